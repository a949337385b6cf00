"""docker-compose.yml and Dockerfile, checked statically (no Docker engine runs where this suite runs)."""

from __future__ import annotations

import json
import re

import pytest
from helpers import REPO

yaml = pytest.importorskip("yaml")

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def dockerfile_instruction(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def test_services_and_their_healthchecks():
    assert set(SERVICES) == {"postgres", "luigid", "worker"}
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert any("8082" in part for part in SERVICES["luigid"]["healthcheck"]["test"])
    assert SERVICES["worker"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                                "luigid": {"condition": "service_healthy"}}


def test_every_published_port_is_bound_to_localhost():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_volumes_state_and_read_only_data():
    assert set(COMPOSE["volumes"]) == {"pgdata", "luigid-state", "worker-state"}
    worker_volumes = SERVICES["worker"]["volumes"]
    assert "./data_sample:/app/data_sample:ro" in worker_volumes
    assert "./config:/app/config:ro" in worker_volumes
    assert any(v.startswith("luigid-state:") for v in SERVICES["luigid"]["volumes"])
    init = [v for v in SERVICES["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (REPO / init[0].split(":")[0]).exists()


def test_no_secret_literals():
    env = SERVICES["postgres"]["environment"]
    assert env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    dsn = SERVICES["worker"]["environment"]["PIPELINE_PG_DSN"]
    assert re.fullmatch(r"postgresql://\$\{[^}]+\}:\$\{POSTGRES_PASSWORD[^}]*\}@postgres:5432/\$\{[^}]+\}", dsn)
    assert "POSTGRES_PASSWORD=" in (REPO / ".env.example").read_text()
    assert ".env" in (REPO / ".gitignore").read_text().split()
    for text in (json.dumps(COMPOSE), DOCKERFILE, (REPO / "luigi.cfg").read_text()):
        assert not re.search(r"password\s*[:=]\s*[\"']?\w", text, re.IGNORECASE), "a literal password"


def test_worker_runs_the_documented_command():
    entrypoint = json.loads(dockerfile_instruction("ENTRYPOINT")[-1])
    command = " ".join(entrypoint + SERVICES["worker"]["command"])
    assert command == "luigi --module pipeline IngestAll --scheduler-host luigid --workers 2 --no-lock"
    assert command in " ".join((REPO / "docs" / "operations.md").read_text().split())
    assert SERVICES["luigid"]["entrypoint"] == ["luigid"]


def test_dockerfile_image():
    assert re.fullmatch(r"python:3\.1\d-slim(-\w+)?", dockerfile_instruction("FROM")[0].strip())
    assert re.search(r"openjdk-\d+-jre-headless", DOCKERFILE)
    user = dockerfile_instruction("USER")[-1].strip()
    assert user not in ("root", "0")
    assert "pip install --no-cache-dir ." in DOCKERFILE
    for path in ("pyproject.toml", "pipeline", "luigi.cfg", "config"):
        assert any(path in copy.split() for copy in dockerfile_instruction("COPY")), path
