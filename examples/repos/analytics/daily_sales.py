from lib.dagkit import DAG, Task
from lib.utils import table

dag = DAG("daily_sales", schedule="@daily")
extract = Task("extract_" + table("orders").replace(".", "_"), dag)
transform = Task("transform", dag)
load = Task("load", dag)
extract >> transform >> load
