"""The extraction worker: where DAG code runs, and the boundary around it.

- :mod:`~dagfetch.graphs.worker.protocol`: the JSON-only messages, checked by the parent;
- :mod:`~dagfetch.graphs.worker.zygote`: the worker (a warm interpreter forking per file);
- :mod:`~dagfetch.graphs.worker.pool`: the parent's side (workers, time limits, clean-up);
- :mod:`~dagfetch.graphs.worker.environment`: what the worker may see of the environment;
- :mod:`~dagfetch.graphs.worker.limits`: dying with the parent, reaping, rlimits.
"""
