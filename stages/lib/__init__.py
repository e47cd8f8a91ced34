"""What the stages share, one job a module: paths, params, files, the IDX data, the TF runtime, models and training."""
