"""Fixtures for the Airflow plugin's tests: Airflow's venv (created once, reused across runs)
and the repository's test servers (tests/servers/, registered in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from airflow_env import AirflowEnv, ensure_venv

# the repository's servers, when this folder runs on its own (with tests/ they are there already)
pytest_plugins = ["tests.servers.git", "tests.servers.s3"]

# Installing Airflow (first use in a fresh checkout) happens in the setup of whichever test
# asks for the venv first; on a loaded machine it takes longer than the suite's 300 s timeout
VENV_SETUP_TIMEOUT = 1500


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "airflow" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(VENV_SETUP_TIMEOUT))


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    return AirflowEnv(ensure_venv(), tmp_path_factory.mktemp("airflow-home"))


@pytest.fixture(scope="session")
def example_dags(airflow: AirflowEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example DAGs Airflow ships (``airflow/example_dags``)."""
    where = airflow.script("example_dags_path")["path"]
    copy = tmp_path_factory.mktemp("example-dags") / "example_dags"
    shutil.copytree(where, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy
