#!/usr/bin/env bash
# Stand-ins for the official base images the Dockerfile and docker-compose.yml name (python:3.11-slim-bookworm,
# postgres:15), for machines that reach no image registry: built from Debian's packages on a root filesystem made
# with debootstrap. A stand-in for a registry, nothing more: an image that is present or can be pulled is used as it
# is, and nothing here goes into the project's own image beyond its base.
#
# The stand-ins carry this machine's CA bundle (/etc/ssl/certs/ca-certificates.crt), so that apt and pip inside
# `docker build` can go through a TLS-intercepting proxy the host trusts.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base=standin/debian:bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

present() { docker image inspect "$1" >/dev/null 2>&1; }

missing=()
for image in python:3.11-slim-bookworm postgres:15; do
  if present "$image" || timeout 20 docker pull -q "$image" >/dev/null 2>&1; then
    echo "standins: $image is available; no stand-in needed"
  else
    missing+=("$image")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

root=""
cleanup() { rm -rf "$here/host-ca.crt" ${root:+"$root"}; }
trap cleanup EXIT
if ! present "$base"; then
  command -v debootstrap >/dev/null || { echo "standins: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  root="$(mktemp -d)"
  echo "standins: building a Debian bookworm root filesystem from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  mkdir -p "$root/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import --change 'ENV LANG=C.UTF-8' - "$base" >/dev/null
fi

cp /etc/ssl/certs/ca-certificates.crt "$here/host-ca.crt"
for image in "${missing[@]}"; do
  case "$image" in
    python:*) file=python.Dockerfile ;;
    postgres:*) file=postgres.Dockerfile ;;
  esac
  echo "standins: building a stand-in for $image ($file)"
  out="$(docker build --quiet --network host -t "$image" -f "$here/$file" "$here" 2>&1)" || { echo "$out" >&2; exit 1; }
done
