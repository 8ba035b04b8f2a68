from lib.dagkit import DAG, Task

dag = DAG("weekly_report", schedule="@weekly")
Task("collect", dag) >> Task("render", dag) >> Task("email", dag)
