"""A ``dagfetch.secrets`` source: a ``conn_id`` resolved by Airflow's own connection lookup.

dagfetch asks its sources in this order, first hit wins (see :mod:`dagfetch.connections`):

1. ``DAGFETCH_CONN_<ID>``;
2. the manifest's connections file (or ``DAGFETCH_CONNECTIONS_FILE``);
3. the ``dagfetch.secrets`` entry points, this one among them. It asks
   ``airflow.models.Connection.get_connection_from_secrets``, which goes through Airflow's
   own order: the secrets backend configured in ``[secrets] backend``, then
   ``AIRFLOW_CONN_<ID>``, then Airflow's metadata database (skipped quietly when there is
   none).

So an Airflow deployment's connections serve dagfetch without being written twice, and a
``DAGFETCH_CONN_<ID>`` still overrides one for dagfetch alone. Without Airflow importable the
source answers nothing and the lookup goes on. The password and secret-looking extras become
dagfetch secrets (masked in every log and error) as soon as dagfetch parses the answer.
"""

from __future__ import annotations

from typing import Any


def airflow_connection(conn_id: str) -> dict[str, Any] | None:
    """The connection Airflow knows as ``conn_id``, as a dagfetch connection mapping."""
    try:
        from airflow.models.connection import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:
        return None  # no Airflow in this environment: the other sources decide
    try:
        found = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
    return {
        "conn_type": found.conn_type,
        "host": found.host or None,
        "port": found.port,
        "login": found.login or None,
        "password": found.password or None,
        "schema": found.schema or None,
        "extra": found.extra_dejson,
    }
