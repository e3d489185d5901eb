"""The pipeline's steps as plain functions and objects (no Prefect): what the DVC stages and the Prefect tasks both call."""
