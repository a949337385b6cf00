# Stand-in for python:3.11-slim-bookworm (see standins.sh): Debian's Python 3.11 where the official image has its
# own, with `python` and `pip` on PATH and pip allowed to install into the system, as in the official image.
FROM standin/debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip
# after ca-certificates, which writes the bundle anew
COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
CMD ["python3"]
