"""Preloaded by a worker in the huge-page tests: 16 MB that the worker holds and never writes
again, as a heavy framework's imported objects are."""

import os

HELD = os.urandom(16 << 20)
