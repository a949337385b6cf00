"""The Spark side of the Spark engine: one Spark session per process, and Arrow UDFs shipped by value."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from pathlib import Path

from .. import config
from ..errors import ExportError

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
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # runs the Arrow UDFs (arrow_udf_by_value)
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
                .config("spark.sql.caseSensitive", "true")  # "A" and "a" are two PostgreSQL columns
                .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
                .config("spark.sql.timeType.enabled", "true")  # Parquet TIME(MICROS) columns
                .config("spark.sql.legacy.parquet.nanosAsLong", "true")  # see source_value
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


def arrow_udf_by_value(function, return_type: str, *args):
    """``function(array, *args) -> array`` as a Spark Arrow UDF. Its module is shipped by value, so the
    Python workers beside the executors import pyarrow and numpy but not this package: they stay
    small, and a cluster's workers need only pyspark, pyarrow and numpy."""
    from pyspark import cloudpickle
    from pyspark.sql.functions import arrow_udf

    from ..types import temporal

    for module in (sys.modules[function.__module__], temporal):  # temporal: what nested writes dates with
        cloudpickle.register_pickle_by_value(module)
    return arrow_udf(lambda values: function(values, *args), return_type)


