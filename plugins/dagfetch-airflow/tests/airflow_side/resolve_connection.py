"""Resolve conn_ids through dagfetch's sources in Airflow's venv; print what came back.

Usage: resolve_connection.py CONN_ID... Prints one JSON line: conn_id -> its fields, or
{"error": ...} when it is not found.
"""

import json
import sys

from dagfetch.connections import ConnectionResolver
from dagfetch.errors import ConnectionConfigError


def resolve(resolver: ConnectionResolver, conn_id: str) -> dict:
    try:
        conn = resolver.resolve(conn_id)
    except ConnectionConfigError as exc:
        return {"error": str(exc)}
    return {
        "conn_type": conn.conn_type, "host": conn.host, "port": conn.port, "login": conn.login,
        "password": conn.password.reveal() if conn.password else None, "repr": repr(conn),
        "extra": conn.revealed_extra(),
    }


resolver = ConnectionResolver()
print(json.dumps({conn_id: resolve(resolver, conn_id) for conn_id in sys.argv[1:]}))
