"""Alembic environment of the graph store: its own history table, only its own tables.

Run through :func:`dagfetch.graphs.database.upgrade` (or ``dagfetch db upgrade``), which hands
over the connection and the table prefix in ``config.attributes``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from dagfetch.graphs.schema import DEFAULT_PREFIX, tables

config = context.config
prefix: str = config.attributes.get("table_prefix", DEFAULT_PREFIX)
target = tables(prefix)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # the store may live inside a host's metastore: never look at the host's tables
    if type_ == "table":
        return bool(name) and str(name).startswith(prefix)
    return True


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target.metadata,
        version_table=target.version_table,
        include_name=include_name,
        compare_type=True,
        **kwargs,
    )


if context.is_offline_mode():
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
