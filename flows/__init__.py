"""Prefect orchestration of the DVC pipeline."""
