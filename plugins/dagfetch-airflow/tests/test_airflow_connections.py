"""conn_ids resolved through Airflow's own lookup (AIRFLOW_CONN_<ID>), in Airflow's venv."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow_env import AirflowEnv

from dagfetch.connections import ConnectionResolver
from dagfetch.errors import ConnectionConfigError

pytestmark = pytest.mark.slow

SECRET = "af-Secret-Value-5d2e"


AIRFLOW_SIDE = {
    "AIRFLOW_CONN_BUCKET_CONN": json.dumps({
        "conn_type": "aws", "login": "AKIAEXAMPLE", "password": SECRET,
        "extra": {"region_name": "eu-west-1", "endpoint_url": "http://e:1"}}),
    "AIRFLOW_CONN_WEB": f"https://user:{SECRET}@example.org:8443/p",
    "AIRFLOW_CONN_BOTH": "aws://from-airflow:x@",
    "DAGFETCH_CONN_BOTH": "aws://from-dagfetch:y@",
}


@pytest.fixture(scope="module")
def resolved(airflow: AirflowEnv) -> dict[str, Any]:
    """Every lookup of this module, in one run of Airflow's venv."""
    return airflow.script(  # type: ignore[no-any-return]
        "resolve_connection", "bucket_conn", "web", "both", "nowhere", extra_env=AIRFLOW_SIDE)


def test_airflow_conn_json_resolves_with_its_secret_masked(resolved: dict[str, Any]) -> None:
    got = resolved["bucket_conn"]
    assert got["conn_type"] == "aws"
    assert got["login"] == "AKIAEXAMPLE"
    assert got["password"] == SECRET
    assert got["extra"] == {"region_name": "eu-west-1", "endpoint_url": "http://e:1"}
    assert SECRET not in got["repr"]


def test_airflow_conn_uri_resolves(resolved: dict[str, Any]) -> None:
    got = resolved["web"]
    assert (got["conn_type"], got["host"], got["port"], got["login"], got["password"]) == (
        "https", "example.org", 8443, "user", SECRET)


def test_dagfetch_conn_wins_over_airflow_conn(resolved: dict[str, Any]) -> None:
    assert resolved["both"]["login"] == "from-dagfetch"


def test_unknown_conn_id_is_a_clear_error_naming_it(resolved: dict[str, Any]) -> None:
    assert "connection 'nowhere': not found" in resolved["nowhere"]["error"]


def test_without_airflow_the_source_answers_nothing() -> None:
    """In dagfetch's own environment (no Airflow) the plugin's source steps aside."""
    try:
        import airflow  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - this runs in dagfetch's venv, which has no Airflow
        pytest.fail("dagfetch's test venv must not hold Airflow")
    from dagfetch_airflow.connections import airflow_connection

    assert airflow_connection("anything") is None
    with pytest.raises(ConnectionConfigError, match="'anything': not found"):
        ConnectionResolver(environ={}).resolve("anything")
