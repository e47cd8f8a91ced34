"""The pipeline run: one Prefect task per DVC stage, independent stages side by side, DVC alone
deciding what runs, is skipped or is restored (`flow`); the stages' tasks (`tasks`)."""
