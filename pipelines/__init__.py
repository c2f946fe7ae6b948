"""Runnable pipeline scripts: ``python -m pipelines.<name>``."""
