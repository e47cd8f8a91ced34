"""train-mlp: the multi-layer perceptron, trained on the train split, early-stopped on validation."""

from stages.io import run_main
from stages.models import MLPParams, build_mlp
from stages.training import run_training_stage


def main() -> None:
    run_training_stage("mlp", build_mlp, MLPParams)


if __name__ == "__main__":
    run_main(main)
