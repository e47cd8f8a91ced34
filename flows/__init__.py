"""Prefect orchestration of the DVC pipeline, one sub-package per seam:

- `pipeline`: the pipeline run, one task per DVC stage, DVC deciding what runs;
- `sweep`: a sweep across machines and its search (Optuna), lost machines, the leaderboard;
- `trial`: one point of a sweep, on whichever worker takes it;
- `compare`: whether the difference between two revisions is real;
- `plumbing`: what talks to git, DVC and processes, and runs Prefect tasks side by side;
- `cli`: the `fmnist-flow` command.

`contract` holds the names a sweep and its trials' runs both read.
"""
