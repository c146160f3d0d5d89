"""Log trainprove audits to MLflow: one run per audit."""

__version__ = "0.1.0"
