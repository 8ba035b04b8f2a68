"""A module of a preloaded package that DAG files import: the worker imports it before it
forks (see the worker's ``warm_up``), so its pid is the worker's."""

import os

IMPORTED_IN = os.getpid()
