#!/usr/bin/env bash
# Build a Debian bookworm image with Python 3.11 and pip, standing in for python:3.11-slim-bookworm
# where no image registry is reachable: debootstrap, then `docker import`.
#   tests/containers/base_image.sh IMAGE_NAME
# pip inside it trusts this machine's CA bundle (some networks re-sign TLS): that belongs to the
# test's base image, never to the project's Dockerfile.
set -euo pipefail
name=$1
# One build at a time (.ci/run starts one early, in the background; the container tests wait on it
# here and then find the image made).
exec 9>"/tmp/fmnist-base-image.lock"
flock 9
docker image inspect "$name" >/dev/null 2>&1 && exit 0
# The Debian mirror this machine's apt uses (deb822 sources first, then the one-line format): the
# repo names none, so the image comes from wherever this machine's packages do.
mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
  /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
[ -n "$mirror" ] || { echo "no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
chroot "$root" python3 -m venv /opt/python
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' - "$name" >/dev/null
