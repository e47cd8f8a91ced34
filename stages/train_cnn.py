"""train-cnn: the convolutional network, trained on the train split, early-stopped on validation."""

from stages.io import run_main
from stages.models import CNNParams, build_cnn
from stages.training import run_training_stage


def main() -> None:
    run_training_stage("cnn", build_cnn, CNNParams)


if __name__ == "__main__":
    run_main(main)
