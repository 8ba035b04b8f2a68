"""Fork twice with the plugin's at-fork hooks installed: before and after one connection to
the metadata database. Prints, for each fork, whether the child found the parent's engines in
``airflow.settings`` and whether their pools were the parent's or new ones (disposed of by
Airflow's own at-fork hook), and the same for the parent after the fork."""

import json
import os

import airflow.settings as settings
from dagfetch_airflow import forking
from sqlalchemy import text


def _pool(engine):
    return getattr(getattr(engine, "sync_engine", engine), "pool", None)


def fork() -> dict:
    engines = {name: getattr(settings, name) for name in ("engine", "async_engine")}
    pools = {name: _pool(engine) for name, engine in engines.items()}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, json.dumps({
            name: {"same_engine": getattr(settings, name) is engines[name],
                   "same_pool": _pool(getattr(settings, name)) is pools[name]}
            for name in engines}).encode())
        os._exit(0)
    os.close(write)
    child = json.loads(os.read(read, 65536))
    os.waitpid(pid, 0)
    parent = {name: {"same_engine": getattr(settings, name) is engines[name],
                     "same_pool": _pool(getattr(settings, name)) is pools[name]}
              for name in engines}
    return {"child": child, "parent": parent}


assert forking.install()
assert forking.install()  # a second call registers nothing more
out = {"empty": fork()}
with settings.engine.connect() as connection:  # the pool keeps the connection afterwards
    connection.execute(text("select 1"))
out["connected"] = fork()
print(json.dumps(out))
