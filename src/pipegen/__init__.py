"""pipegen: compile one ML pipeline spec to Airflow, Kubeflow Pipelines or AWS Step Functions."""

__version__ = "0.1.0"
