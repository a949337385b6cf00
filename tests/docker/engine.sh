#!/usr/bin/env bash
# A Docker engine for the compose test (tests/test_compose.py): installs Debian's docker.io, docker-compose and
# debootstrap where they are missing (as root, with apt-get) and starts dockerd where none answers. When it cannot,
# it says why and exits 0: the test then skips itself, giving the reason.
set -uo pipefail
ready() { docker info >/dev/null 2>&1 && command -v docker-compose >/dev/null && command -v debootstrap >/dev/null; }
ready && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "engine: no Docker engine, and not root with apt-get to install one; the compose test will be skipped"
  exit 0
fi
if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "engine: installing docker.io, docker-compose and debootstrap"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap \
    >/dev/null) || { echo "engine: the install failed; the compose test will be skipped"; exit 0; }
fi
if ! docker info >/dev/null 2>&1; then
  echo "engine: starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
ready || echo "engine: dockerd did not answer (see /var/log/dockerd.log); the compose test will be skipped"
exit 0
