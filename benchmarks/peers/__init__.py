"""Peers that live outside the project's environment (Apache Airflow's own DAG bundles), run
in virtual environments of their own and driven by subprocess."""
