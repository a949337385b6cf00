"""The same load on a Spark standalone cluster (a master and a worker on loopback, from the installed pyspark)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest
from helpers import assert_table_matches, ingest, ok, query, write_awkward
from test_nested import nested_table

SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def spark_cluster(tmp_path):
    port = _free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false"}
    logs = tmp_path / "spark-logs"
    logs.mkdir()
    master = subprocess.Popen(
        [str(SPARK_CLASS), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(_free_port())],
        env=env, stdout=open(logs / "master.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    worker = subprocess.Popen(
        [str(SPARK_CLASS), "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "2",
         "--memory", "2g", "--webui-port", str(_free_port()), "--work-dir", str(tmp_path / "spark-work"),
         f"spark://127.0.0.1:{port}"],
        env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Registering worker" not in (logs / "master.log").read_text():
            assert master.poll() is None and worker.poll() is None and time.monotonic() < deadline, \
                (logs / "master.log").read_text() + (logs / "worker.log").read_text()
            time.sleep(0.5)
        yield f"spark://127.0.0.1:{port}"
    finally:
        for proc in (worker, master):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_load_on_a_standalone_spark_cluster(env, tmp_path, spark_cluster):
    source = tmp_path / "src"
    write_awkward(source, files=4, rows_per_file=250)
    out = ok(ingest({**env, "SPARK_LOCAL_IP": "127.0.0.1"}, source, "cluster.t", 250, "--spark-master",
                    spark_cluster, "--workers", "2"))
    assert f"Starting Spark (master={spark_cluster})" in out
    assert_table_matches(env["PIPELINE_PG_DSN"], "cluster", "t", source)
    assert query(env["PIPELINE_PG_DSN"], "SELECT count(*) FROM pipeline.chunk_ledger") == [(4,)]
    nested = tmp_path / "nested"  # lists, structs, maps and floats: Arrow UDFs in the executors' Python workers
    nested.mkdir()
    pq.write_table(nested_table(), nested / "a.parquet")
    ok(ingest({**env, "SPARK_LOCAL_IP": "127.0.0.1"}, nested, "cluster.nested", 2, "--spark-master", spark_cluster))
    assert_table_matches(env["PIPELINE_PG_DSN"], "cluster", "nested", nested)
