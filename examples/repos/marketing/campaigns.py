from lib.dagkit import DAG, Task
from lib.utils import TEAM

dag = DAG(f"{TEAM}_campaigns", schedule="@hourly")
pull = Task("pull_ads", dag)
score = Task("score", dag)
publish = Task("publish", dag)
pull >> score
pull >> publish
