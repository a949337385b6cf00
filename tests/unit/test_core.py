"""The per-batch core as Spark's executors run it: shipped by value, on batches in Spark's own Arrow types."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from pipeline.engines import core
from pipeline.engines.spark_session import by_value
from pipeline.model.options import LoadOptions
from pipeline.model.plan import Plan, SourceFile
from pipeline.types.mapping import pg_column

UTC = dt.UTC

# pyarrow's reading of the files, and the same rows as Spark hands them to mapInArrow
READ = pa.schema([("id", pa.uint32()), ("big", pa.uint64()), ("name", pa.dictionary(pa.int32(), pa.string())),
                  ("ts", pa.timestamp("us")), ("tags", pa.list_(pa.string())), ("src", pa.string()),
                  ("_pipeline_row", pa.int64())])
ROWS = {"id": [1, 2**32 - 1, 3], "big": [2**64 - 1, None, 0], "name": ["a,\"b\"", "bad\x00", None],
        "ts": [dt.datetime(2023, 1, 1, 0, 0, 0, 1), None, dt.datetime(9999, 12, 31)],
        "tags": [["x", None], [], None], "src": ["a.parquet"] * 3, "_pipeline_row": [0, 1, 2]}
SPARK = pa.schema([("id", pa.int64()), ("big", pa.decimal128(20, 0)), ("name", pa.string()),
                   ("ts", pa.timestamp("us", "UTC")), ("tags", pa.list_(pa.field("element", pa.string()))),
                   ("src", pa.string()), ("_pipeline_row", pa.int64()), ("_l0", pa.int32())])

# Run where this package, Luigi and the database drivers cannot be imported, as on a cluster's executor
EXECUTOR = """
import io, json, pickle, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pipeline", "luigi", "psycopg2", "sqlalchemy"):
            raise ImportError("not on the executor: " + name)

sys.meta_path.insert(0, Refuse())
import pyarrow as pa
import pytest
from pyspark import TaskContext

run, batch = pickle.loads(sys.stdin.buffer.read())
TaskContext.from_json({"stageId": 0, "partitionId": 7, "attemptNumber": 0, "taskAttemptId": 1, "cpus": 1,
                       "resources": {}, "localProperties": {}})
print(json.dumps(pa.Table.from_batches(list(run(iter([batch])))).to_pylist()))
"""


def plan(folder: Path) -> Plan:
    columns = [pg_column(f.name, f.type) for f in READ]
    return Plan("load1", "s.t", str(folder), [SourceFile("a.parquet", 1, 1)], [3], columns, [[0]],
                repeated_leaves=[3], file_leaf_entries=[[4]],
                options=LoadOptions(source_file_column="src", bad_rows=(5, 0)))


def _shipped(task, batch: pa.RecordBatch, folder: Path) -> dict:
    """The task's one result row, run pickled by value where this package cannot be imported."""
    from pyspark import cloudpickle

    shipped = subprocess.run([sys.executable, "-c", EXECUTOR], input=cloudpickle.dumps((by_value(task), batch)),
                             capture_output=True, cwd=folder, timeout=120)
    assert shipped.returncode == 0, shipped.stderr.decode()[-3000:]
    [result] = json.loads(shipped.stdout)
    return result


def test_the_spark_task_runs_shipped_by_value_and_writes_what_the_arrow_engine_writes(tmp_path):
    whole = plan(tmp_path)
    local = io.BytesIO()
    expected, expected_bad = core.write_batches(whole, [pa.RecordBatch.from_pydict(ROWS, schema=READ)], local)

    in_spark = pa.RecordBatch.from_pydict({**ROWS, "_l0": [2, 1, 1]}, schema=SPARK)  # entries of each row's tags
    result = _shipped(core.spark_task(core.task_plan(whole), str(tmp_path), READ, ["a.parquet"], 1), in_spark,
                      tmp_path)

    assert result["part"] == "part-00007.csv"
    assert (tmp_path / "part-00007.csv").read_bytes() == local.getvalue()
    assert b"bad" not in local.getvalue() and local.getvalue().count(b"\n") == 2  # the NUL row was set aside
    stats, bad, strangers, entries = core.task_results(whole, [SimpleNamespace(**result)])
    assert stats == expected and stats.quarantined == 1 and stats.rows == 2
    assert bad == expected_bad and [(b.file, b.row, b.columns) for b in bad] == [("a.parquet", 1, ["name"])]
    assert (strangers, entries) == (0, [4])
    assert not list(tmp_path.glob(".part-*"))  # written under a temporary name, then renamed


def test_a_shipped_task_writes_binary_chunks_as_the_arrow_engine_does(tmp_path):
    whole = replace(plan(tmp_path), options=LoadOptions(source_file_column="src"))  # binary chunks: no budget
    rows = {**ROWS, "name": ["a,\"b\"", "c", None]}
    local = io.BytesIO()
    expected, _ = core.write_batches(whole, [pa.RecordBatch.from_pydict(rows, schema=READ)], local, binary=True)

    in_spark = pa.RecordBatch.from_pydict({**rows, "_l0": [2, 1, 1]}, schema=SPARK)
    result = _shipped(core.spark_task(core.task_plan(whole), str(tmp_path), READ, ["a.parquet"], 1, binary=True),
                      in_spark, tmp_path)

    assert result["part"] == "part-00007.bin"
    written = (tmp_path / "part-00007.bin").read_bytes()
    assert written == local.getvalue() and written.startswith(b"PGCOPY\n\xff\r\n\x00")
    assert core.task_results(whole, [SimpleNamespace(**result)])[0] == expected and expected.rows == 3


def test_spark_types_are_read_as_pyarrow_reads_them_or_the_column_is_named():
    required = pa.list_(pa.field("phone", pa.struct([pa.field("n", pa.int64(), nullable=False)]), nullable=False))
    in_spark = pa.array([[{"n": 1}], None, [None]], pa.list_(pa.field("element", pa.struct([("n", pa.int64())]))))
    batch = pa.RecordBatch.from_arrays([in_spark], names=["p"])
    assert core._conform(batch, pa.schema([("p", required)])).column(0).to_pylist() == in_spark.to_pylist()

    batch = pa.RecordBatch.from_pydict({"d": [Decimal("1.5")]}, schema=pa.schema([("d", pa.decimal128(5, 1))]))
    with pytest.raises(core.Unconformable, match="Spark read column 'd' as decimal128.5, 1., which does not convert"):
        core._conform(batch, pa.schema([("d", pa.int32())]))


def _run_here(task, batches=()) -> dict:
    """The task run in this process, as partition 7 of a Spark job (no batch: a task of no rows)."""
    from pyspark import TaskContext

    TaskContext.from_json({"stageId": 0, "partitionId": 7, "attemptNumber": 0, "taskAttemptId": 1, "cpus": 1,
                           "resources": {}, "localProperties": {}})
    try:
        return pa.Table.from_batches(list(task(iter(batches)))).to_pylist()[0]
    finally:
        TaskContext._setTaskContext(None)


def test_a_task_of_no_rows_writes_a_valid_empty_part(tmp_path):
    whole = replace(plan(tmp_path), options=LoadOptions(source_file_column="src"))
    result = _run_here(core.spark_task(core.task_plan(whole), str(tmp_path), READ, ["a.parquet"], 1, binary=True))
    written = (tmp_path / "part-00007.bin").read_bytes()
    assert written.startswith(b"PGCOPY\n\xff\r\n\x00") and written.endswith(b"\xff\xff")  # header, trailer
    stats, _, strangers, entries = core.task_results(whole, [SimpleNamespace(**result)])
    assert (stats.rows, strangers, entries, result["error"]) == (0, 0, [0], None)


def test_a_task_that_cannot_read_its_batches_says_why_and_leaves_no_part(tmp_path):
    whole = plan(tmp_path)
    wrong = pa.schema([pa.field(f.name, pa.int32() if f.name == "name" else f.type) for f in READ])  # planned
    in_spark = pa.RecordBatch.from_pydict({**ROWS, "_l0": [2, 1, 1]}, schema=SPARK)
    result = _run_here(core.spark_task(core.task_plan(whole), str(tmp_path), wrong, ["a.parquet"], 1), [in_spark])
    assert result["unconformable"] and "Spark read column 'name' as string" in result["error"]
    assert not list(tmp_path.iterdir())
