# The image that Docker and Kubernetes work pools run the pipeline flow in (prefect.yaml:
# fmnist-docker, fmnist-kubernetes). It holds the dependencies only: each flow run clones the
# repository at the deployed branch, so the code and params come from git and the artifacts
# from the DVC remote.
#
#   docker build -t registry.example.com/fmnist-pipeline:latest --build-arg DVC_REMOTES=s3 .
#   docker push registry.example.com/fmnist-pipeline:latest
#
# BASE_IMAGE: any Debian bookworm image whose `pip` installs into a Python 3.11 (where Docker Hub is
# out of reach, one made with debootstrap: tests/containers/base_image.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# git for the clone step and for DVC; the real dataset, so a first run anywhere needs no download.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

# DVC's support for the remote's storage: s3, gs, azure, ssh, ... (a NAS path needs none).
ARG DVC_REMOTES=s3
WORKDIR /opt/fmnist
COPY pyproject.toml README.md ./
COPY stages stages
COPY flows flows
COPY tools tools
RUN pip install --no-cache-dir . "dvc[${DVC_REMOTES}]==3.67.*"

ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DVC_NO_ANALYTICS=1 \
    TF_CPP_MIN_LOG_LEVEL=3
WORKDIR /work
