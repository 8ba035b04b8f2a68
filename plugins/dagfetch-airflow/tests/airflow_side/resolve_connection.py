"""Resolve a conn_id through dagfetch's sources in Airflow's venv; print what came back.

Usage: resolve_connection.py CONN_ID. Prints one JSON line ({"error": ...} when not found).
"""

import json
import sys

from dagfetch.connections import ConnectionResolver
from dagfetch.errors import ConnectionConfigError

try:
    conn = ConnectionResolver().resolve(sys.argv[1])
except ConnectionConfigError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({
        "conn_type": conn.conn_type, "host": conn.host, "port": conn.port, "login": conn.login,
        "password": conn.password.reveal() if conn.password else None, "repr": repr(conn),
        "extra": conn.revealed_extra(),
    }))
