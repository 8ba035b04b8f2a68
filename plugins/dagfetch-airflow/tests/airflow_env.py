"""Apache Airflow in its own virtual environment, beside dagfetch and this plugin.

Airflow's pins must never constrain dagfetch's test environment, so Airflow lives in
``.venvs/airflow-<version>`` at the repository root (git-ignored), created once and reused by
every run while it is complete (a marker file written last says so). dagfetch and the plugin
are installed editable, so the venv follows the checkout. Code that needs Airflow runs there,
by subprocess: scripts under ``airflow_side/`` and the venv's ``dagfetch`` command.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dagfetch.oslock import exclusive_lock

AIRFLOW_VERSION = "3.3.2"
PLUGIN = Path(__file__).resolve().parents[1]
REPO = PLUGIN.parents[1]
VENVS = REPO / ".venvs"
VENV = VENVS / f"airflow-{AIRFLOW_VERSION}"
SCRIPTS = Path(__file__).resolve().parent / "airflow_side"


def marker_text() -> str:
    """What the venv holds. A venv with another marker is brought up to date: the marker names
    the pyproject files, so a changed requirement of dagfetch or the plugin is installed."""
    projects = {str(path.relative_to(REPO)): hashlib.sha256(path.read_bytes()).hexdigest()
                for path in (REPO / "pyproject.toml", PLUGIN / "pyproject.toml")}
    return json.dumps({"apache-airflow": AIRFLOW_VERSION, "dagfetch": "-e .[s3,git]",
                       "dagfetch-airflow": "-e plugins/dagfetch-airflow", **projects})


def _pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *args], check=True, cwd=REPO)


def ensure_venv() -> Path:
    """The Airflow venv, created if missing or incomplete; safe with parallel test workers."""
    marker = VENV / ".dagfetch-complete"
    VENVS.mkdir(exist_ok=True)
    with exclusive_lock(VENVS / f"airflow-{AIRFLOW_VERSION}.lock", timeout=1200):
        wanted = marker_text()
        if marker.exists() and marker.read_text() == wanted:
            return VENV
        python = VENV / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        _pip(python, f"apache-airflow=={AIRFLOW_VERSION}")
        # the same Airflow pin again: dagfetch's requirements must fit around Airflow's
        _pip(python, f"apache-airflow=={AIRFLOW_VERSION}", "-e", f"{REPO}[s3,git]",
             "-e", str(PLUGIN))
        marker.write_text(wanted)
    return VENV


@attrs.frozen
class AirflowEnv:
    """The venv plus an ``AIRFLOW_HOME`` of one test session (no metadata database needed)."""

    venv: Path
    home: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def dagfetch(self) -> Path:
        return self.venv / "bin" / "dagfetch"

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHONPATH"))}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        })
        env.update(extra or {})
        return env

    def run(self, argv: list[str], *, extra_env: Mapping[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 240,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(argv, env=self.environ(extra_env), cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv[:3]} exited with {proc.returncode}:\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        return proc

    def script(self, name: str, *args: str | Path, extra_env: Mapping[str, str] | None = None,
               cwd: Path | None = None, timeout: float = 240) -> Any:
        """Run ``airflow_side/<name>.py`` in the venv; its last stdout line is JSON."""
        proc = self.run([str(self.python), str(SCRIPTS / f"{name}.py"), *map(str, args)],
                        extra_env=extra_env, cwd=cwd, timeout=timeout)
        return json.loads(proc.stdout.strip().splitlines()[-1])
