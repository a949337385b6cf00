"""The Spark side of the Spark engine: one Spark session per process, and functions shipped by value."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from pathlib import Path

from .. import config
from ..errors import ExportError
from .core import BATCH_ROWS

log = logging.getLogger(__name__)
_lock = threading.Lock()
_session = None
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


def session():
    """The process's Spark session, started on first use and stopped at exit."""
    global _session
    with _lock:
        if _session is None:
            from pyspark.sql import SparkSession

            cfg = config.spark()
            log.info("Starting Spark (master=%s)", cfg.master)
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # runs the per-batch core (mapInArrow)
            java_opts = f"-Dlog4j.configurationFile=file:{LOG4J_CONFIG}"
            builder = (
                SparkSession.builder.master(cfg.master)
                .appName("parquet-pg-pipeline")
                .config("spark.driver.memory", cfg.driver_memory)
                .config("spark.driver.extraJavaOptions", java_opts)
                .config("spark.ui.enabled", str(cfg.ui_enabled()).lower())
                .config("spark.ui.killEnabled", "false")  # a page to watch, not to stop jobs from
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.session.timeZone", "UTC")
                # the batches mapInArrow hands the per-batch core: as large as the Arrow engine's
                .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
                .config("spark.sql.caseSensitive", "true")  # "A" and "a" are two PostgreSQL columns
                .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
                .config("spark.sql.timeType.enabled", "true")  # Parquet TIME(MICROS) columns
                # nanosecond timestamps as longs, which the core casts back (``core._conform``)
                .config("spark.sql.legacy.parquet.nanosAsLong", "true")
                # Dates and timestamps are proleptic Gregorian in Arrow and PostgreSQL: never "rebase" them.
                .config("spark.sql.parquet.datetimeRebaseModeInRead", "CORRECTED")
                .config("spark.sql.parquet.int96RebaseModeInRead", "CORRECTED")
                .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "1000000")
                # parquet-mr checks the CRC of every page that carries one: a corrupt page fails the read
                .config("spark.hadoop.parquet.page.verify-checksum.enabled",
                        str(config.export().verify_page_checksums).lower())
                .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
                .config("spark.hadoop.fs.permissions.umask-mode", "077")  # chunk files private, as the state dir
            )
            if cfg.master.startswith("local"):
                # Everything on loopback: the driver, and the UI (which binds to SPARK_LOCAL_IP, else every
                # interface). A container publishing the UI sets SPARK_LOCAL_IP=0.0.0.0; its URL stays 127.0.0.1.
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
                builder = builder.config("spark.driver.host", "127.0.0.1")
            try:
                _session = builder.getOrCreate()
            except Exception as exc:
                raise ExportError(f"Spark could not start (master {cfg.master}): {exc}") from exc
            atexit.register(_session.stop)
            if _session.sparkContext.uiWebUrl:
                log.info("Spark's UI: %s", _session.sparkContext.uiWebUrl)
        return _session


def ui_url() -> str | None:
    """The address of Spark's web UI, when it runs (``[spark] ui``)."""
    return session().sparkContext.uiWebUrl if config.spark().ui_enabled() else None


def by_value(function):
    """``function``, for ``mapInArrow``, with this package shipped by value: pickled with it, rather than imported
    by the Python workers beside the executors. So a cluster's workers need pyspark, pyarrow and numpy, but not
    this package nor what only its driver side imports (Luigi, psycopg2)."""
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__package__.split(".")[0]])
    return function
