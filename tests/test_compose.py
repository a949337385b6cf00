"""docker-compose.yml and the Dockerfile for real: the stack builds, starts and loads the sample exactly; a second run
does nothing; a worker container killed mid-load and started again ends with an exact table; luigid keeps its state
across a restart of its container; the image runs as a non-root user and writes only its volumes; no password shows
in the logs or in ``docker inspect`` beyond the variables that must hold it.

Skipped, with the reason, where no Docker engine answers (``.ci/run`` installs and starts one; ``make compose-test``
runs this file alone). Base images that cannot be pulled are stood in for by ``tests/docker/standins.sh``. The stack
runs a variant of the committed compose file with every service on the host's network, on 127.0.0.1 and free ports,
so that no traffic leaves loopback; the committed file stays the conventional one users run."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from helpers import REPO, assert_table_matches, query

yaml = pytest.importorskip("yaml")
DOCKER, COMPOSE = shutil.which("docker"), shutil.which("docker-compose")
TABLE = ("product", "product_master")


def _engine_problem() -> str | None:
    if not DOCKER or not COMPOSE:
        return "docker and docker-compose are not installed (.ci/run installs them: apt-get install docker.io " \
               "docker-compose debootstrap)"
    info = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                          timeout=60)
    return None if info.returncode == 0 else f"no Docker engine answers: {info.stderr.strip()[:200]}"


PROBLEM = _engine_problem()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=PROBLEM or "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_network(compose: dict, pg_port: int, luigid_port: int, data, config) -> dict:
    """The committed compose file with every service on the host's network, listening on 127.0.0.1 only, on the
    given ports; the sample and config folders are the test's."""
    services = compose["services"]
    for service in services.values():
        service.pop("ports", None)
        service["network_mode"] = "host"
        if "build" in service:
            service["build"] = {"context": str(REPO), "network": "host"}
    pg = services["postgres"]
    pg["environment"]["PGPORT"] = str(pg_port)  # the server's port, and pg_isready's in the healthcheck
    pg["command"] = ["postgres", "-c", "listen_addresses=127.0.0.1"]
    pg["volumes"] = [v.replace("./config/", f"{REPO}/config/") if "initdb" in v else v for v in pg["volumes"]]
    luigid = services["luigid"]
    command = luigid["command"]
    command[command.index("--address") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(luigid_port)
    luigid["healthcheck"]["test"] = [part.replace("8082", str(luigid_port)) for part in luigid["healthcheck"]["test"]]
    worker = services["worker"]
    worker["environment"]["PIPELINE_PG_DSN"] = worker["environment"]["PIPELINE_PG_DSN"].replace(
        "@postgres:5432/", f"@127.0.0.1:{pg_port}/")
    worker["environment"]["SPARK_LOCAL_IP"] = "127.0.0.1"
    command = worker["command"]
    command[command.index("--scheduler-host") + 1] = "127.0.0.1"
    command += ["--scheduler-port", str(luigid_port)]
    worker["volumes"] = [v.replace("./data_sample:", f"{data}:").replace("./config:", f"{config}:")
                         for v in worker["volumes"]]
    return compose


class Stack:
    def __init__(self, folder):
        self.password = secrets.token_urlsafe(18)
        self.pg_port, self.luigid_port = free_port(), free_port()
        self.data, self.config = folder / "data_sample", folder / "config"
        shutil.copytree(REPO / "data_sample", self.data)
        shutil.copytree(REPO / "config", self.config)
        self.file = folder / "docker-compose.yml"
        compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
        self.file.write_text(yaml.safe_dump(host_network(compose, self.pg_port, self.luigid_port, self.data,
                                                         self.config)))
        self.project = "pipelinecomposetest"  # one name: its images are rebuilt from the cache, not piled up
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PG", "PIPELINE_", "POSTGRES_"))},
                    "POSTGRES_USER": "pipeline", "POSTGRES_DB": "pipeline", "POSTGRES_PASSWORD": self.password}
        self.dsn = f"postgresql://pipeline:{self.password}@127.0.0.1:{self.pg_port}/pipeline"

    def compose(self, *args: str, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([COMPOSE, "-f", str(self.file), "-p", self.project, "--ansi", "never", *args],
                                capture_output=True, text=True, env=self.env, timeout=timeout)
        if check:
            assert result.returncode == 0, f"docker-compose {' '.join(args)}: exit {result.returncode}\n" \
                                           f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        return result

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.split()[0]

    def wait_healthy(self, service: str, timeout: int = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = docker("inspect", "-f", "{{.State.Health.Status}}", self.container(service)).stdout.strip()
            if status == "healthy":
                return
            assert time.monotonic() < deadline, f"{service} is {status} after {timeout} s"
            time.sleep(1)

    def luigid_api(self, method: str, **data):
        url = f"http://127.0.0.1:{self.luigid_port}/api/{method}?data=" + urllib.parse.quote(json.dumps(data))
        return json.load(urllib.request.urlopen(url, timeout=10))["response"]


def docker(*args: str, timeout: int = 300, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    standins = subprocess.run(["bash", str(REPO / "tests" / "docker" / "standins.sh")], capture_output=True,
                              text=True, timeout=1800)
    assert standins.returncode == 0, standins.stdout + standins.stderr
    stack = Stack(tmp_path_factory.mktemp("compose"))
    stack.compose("down", "-v", "--remove-orphans", check=False, timeout=300)  # what a killed run left
    stack.compose("build", "--quiet", timeout=1800)
    stack.compose("up", "-d")
    try:
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False, timeout=300)


def test_the_worker_loads_the_sample_exactly_and_a_second_run_does_nothing(stack):
    worker = stack.container("worker")
    exit_code = docker("wait", worker, timeout=600).stdout.strip()
    logs = docker("logs", worker).stderr + docker("logs", worker).stdout
    assert exit_code == "0", logs[-4000:]
    assert_table_matches(stack.dsn, *TABLE, stack.data)
    again = stack.compose("run", "--rm", "worker", timeout=600)
    assert "no new file" in again.stdout + again.stderr
    assert query(stack.dsn, "SELECT count(*) FROM pipeline.published_files") == [(5,)]


def test_a_worker_killed_mid_load_then_started_again_ends_exact(stack):
    subprocess.run([sys.executable, "-m", "pipeline.devtools.sample", "--minutes", "120", "--out", str(stack.data)],
                   check=True, capture_output=True, timeout=600)  # 115 more minute files: 220,110 rows, Spark
    name = f"{stack.project}_killed"
    stack.compose("run", "-d", "--name", name, "worker")
    deadline = time.monotonic() + 600
    while not query(stack.dsn, "SELECT 1 FROM pipeline.chunk_ledger LIMIT 1"):
        assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true", \
            docker("logs", name).stderr[-4000:]
        assert time.monotonic() < deadline, "no chunk was copied within 10 minutes"
        time.sleep(0.3)
    docker("kill", name)  # SIGKILL, mid-load: some chunks copied, the increment not published
    assert query(stack.dsn, "SELECT count(*) FROM pipeline.published_files") == [(5,)]
    # luigid frees the killed worker's tasks once it has not heard from it for worker_disconnect_delay (60 s);
    # a worker started sooner finds them "being run by another worker" and exits with already_running (10)
    deadline = time.monotonic() + 300
    while stack.luigid_api("task_list", status="RUNNING"):
        assert time.monotonic() < deadline, "luigid still lists the killed worker's tasks as running"
        time.sleep(2)
    docker("start", "-a", name, timeout=900)
    assert docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0", docker("logs", name).stderr
    assert_table_matches(stack.dsn, *TABLE, stack.data)
    assert query(stack.dsn, "SELECT count(*), count(DISTINCT name) FROM pipeline.published_files") == [(120, 120)]
    docker("rm", name)


def test_luigid_keeps_its_state_across_a_restart_of_its_container(stack):
    before = set(stack.luigid_api("task_list", status="DONE"))
    assert before, "luigid knows no finished task"
    stack.compose("restart", "luigid")
    stack.wait_healthy("luigid")
    assert before <= set(stack.luigid_api("task_list", status="DONE"))


def test_the_image_runs_as_a_non_root_user_and_writes_only_its_volumes(stack):
    worker = stack.container("worker")
    image = docker("inspect", "-f", "{{.Image}}", worker).stdout.strip()
    assert docker("inspect", "-f", "{{.Config.User}}", image).stdout.strip() == "pipeline"
    assert docker("run", "--rm", "--network", "none", "--entrypoint", "id", image, "-u").stdout.strip() != "0"
    mounts = [m["Destination"] for m in json.loads(docker("inspect", "-f", "{{json .Mounts}}", worker).stdout)]
    changed = [line.split(None, 1)[1] for line in docker("diff", worker).stdout.splitlines()]
    # what Docker itself made: the mount points (and their folders) of the volumes and the sample
    written = [path for path in changed if not any(m == path or m.startswith(path + "/") for m in mounts)]
    assert [path for path in written if not path.startswith("/tmp")] == [], mounts


def test_no_password_in_the_logs_or_in_docker_inspect_beyond_its_variables(stack):
    logs = stack.compose("logs", "--no-color")
    assert stack.password not in logs.stdout + logs.stderr
    ids = stack.compose("ps", "-q").stdout.split()
    for container in json.loads(docker("inspect", *ids).stdout):
        holders = {"POSTGRES_PASSWORD", "PIPELINE_PG_DSN"}
        env = [e for e in container["Config"]["Env"] if e.split("=", 1)[0] not in holders]
        rest = {**container, "Config": {**container["Config"], "Env": env}}
        assert stack.password not in json.dumps(rest), f"{container['Name']} shows the password outside {holders}"
