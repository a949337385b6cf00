# The pipeline image: Python, a headless Java runtime for Spark, the project, a non-root user.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 pipeline \
 && mkdir -p /state/luigid \
 && chown -R pipeline:pipeline /state

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
RUN pip install --no-cache-dir . && rm -rf pipeline
COPY luigi.cfg ./
COPY config ./config

USER pipeline
ENV PIPELINE_STATE_DIR=/state \
    PYTHONUNBUFFERED=1

ENTRYPOINT ["luigi", "--module", "pipeline"]
# --no-lock: a container started again runs as PID 1 again, which Luigi's pid lock would take for the old run
CMD ["IngestAll", "--local-scheduler", "--no-lock"]
