"""What the flows run on: git and DVC through their command lines, the DVC remote, params.yaml
overrides, the processes a run owns, and Prefect tasks side by side. Nothing here knows of a
sweep or a stage; every module is used by more than one seam."""
