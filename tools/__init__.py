"""Commands beside the pipeline: fmnist-predict (classify image files) and the params schema."""
