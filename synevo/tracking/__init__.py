"""Tracking: the sinks a study's runs and metrics go to (MLflow)."""

from synevo.tracking.mlflow_tracker import StudyTracker, default_tracking_uri

__all__ = ["StudyTracker", "default_tracking_uri"]
