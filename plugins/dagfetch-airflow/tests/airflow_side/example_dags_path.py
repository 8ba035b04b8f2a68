"""Print where the installed Airflow keeps its example DAGs."""

import json
import os

import airflow.example_dags

print(json.dumps({"path": os.path.dirname(airflow.example_dags.__file__)}))
