#!/usr/bin/env bash
# The container tests' image of the project: its Dockerfile built on the debootstrapped base image
# (base_image.sh), with no DVC remote extras.
#   tests/containers/project_image.sh BASE_IMAGE IMAGE
# .ci/run starts it at once in the background, so that the minutes of downloading TensorFlow into
# the image overlap the suite's own set-up and first tests; tests/flows/trial/test_docker.py runs it
# again, which waits for that build (one at a time) and then finds every layer cached.
set -euo pipefail
base=$1 image=$2
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/base_image.sh" "$base"
exec 8>"/tmp/fmnist-project-image.lock"
flock 8
docker build --quiet --network host --build-arg "BASE_IMAGE=$base" --build-arg DVC_REMOTES= -t "$image" "$here/../.."
