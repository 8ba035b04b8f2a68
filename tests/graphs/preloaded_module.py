"""Stands in for a heavy framework an extractor preloads (Airflow)."""

import os

IMPORTED_IN = os.getpid()
