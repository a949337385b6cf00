"""Settings: a few ``luigi.Config`` classes (the sections of ``luigi.cfg``), read here and nowhere else.

Luigi reads them from ``luigi.cfg`` (or ``LUIGI_CONFIG_PATH``) and from the command line
(``--postgres-dsn``, ``--spark-master`` ...). Two environment variables win over both:
``PIPELINE_PG_DSN`` (a libpq URI for the target database) and ``PIPELINE_STATE_DIR``.
None of these values is a task parameter, so none appears in a task id.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

import luigi

log = logging.getLogger(__name__)


class postgres(luigi.Config):  # noqa: N801 - the class name is the luigi.cfg section
    dsn = luigi.Parameter(
        default="",
        description="libpq URI or key=value string of the target database; PIPELINE_PG_DSN overrides it. "
        "Empty: use the embedded local Postgres under the state directory.",
    )
    state_schema = luigi.Parameter(
        default="pipeline", description="Schema holding the ledger, the load records and staging tables."
    )
    copy_buffer_bytes = luigi.IntParameter(
        default=4 << 20, description="Read size used to stream a chunk file into COPY."
    )
    connect_timeout = luigi.IntParameter(default=10, description="Seconds to wait for a connection.")
    retries = luigi.IntParameter(
        default=3, description="Retries of a chunk copy, verification or publish after a transient failure."
    )
    retry_delay_s = luigi.FloatParameter(default=2.0, description="First retry delay; doubles on each retry.")


class pipeline(luigi.Config):  # noqa: N801
    state_dir = luigi.Parameter(
        default=".state",
        description="Work directory for plans, chunk files and checkpoints; PIPELINE_STATE_DIR overrides it.",
    )
    config_dir = luigi.Parameter(default="config", description="Folder of *.toml files declaring the tables.")
    chunk_rows = luigi.IntParameter(default=1_000_000, description="Default rows per CSV chunk.")


class spark(luigi.Config):  # noqa: N801
    master = luigi.Parameter(default="local[*]", description="Spark master URL.")
    driver_memory = luigi.Parameter(default="2g", description="spark.driver.memory")
    # Default: on under luigid, whose visualiser links to it; off with --local-scheduler, because the UI answers
    # every user of the machine (the embedded default answers its own user only); it costs no measurable time.
    ui = luigi.OptionalBoolParameter(
        default=None, description="Spark's web UI, which the visualiser links to as the export task's tracking URL; "
        "default: on under luigid, off with --local-scheduler.")

    def ui_enabled(self) -> bool:
        return self.ui if self.ui is not None else not luigi.interface.core().local_scheduler


class export(luigi.Config):  # noqa: N801
    engine = luigi.ChoiceParameter(
        choices=["spark", "arrow"], default="spark",
        description="Who reads the Parquet files: spark (the default; local or a cluster) or arrow "
        "(pyarrow in-process, no JVM: for loads one machine handles).",
    )
    chunk_format = luigi.ChoiceParameter(
        choices=["csv", "binary"], default="csv",
        description="The chunk files' format: csv (a chunk a person can read) or binary (PostgreSQL's binary COPY "
        "format, encoded by pgpq: about half the server's work per row). A load with a bad-row budget keeps "
        "csv, whose COPY errors name the line.",
    )
    spark_min_rows = luigi.IntParameter(
        default=100_000,
        description="An append increment of fewer rows is exported in-process with pyarrow even when engine = "
        "spark: starting a JVM costs more than such an export. 0: always Spark.",
    )
    parallel_jobs = luigi.IntParameter(default=2, description="Chunks exported at the same time.")
    truncate_nanoseconds = luigi.BoolParameter(
        default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="Load nanosecond timestamps keeping their microseconds (the digits below a microsecond are "
        "dropped, as PostgreSQL cannot hold them). Off: such columns are refused.",
    )
    verify_page_checksums = luigi.BoolParameter(
        default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="Check the CRC checksum of every page a Parquet file carries one for, and refuse a file "
        "whose pages do not match it (corrupt data). Files written without page CRCs are read as they are.",
    )
    copy_during_export = luigi.BoolParameter(
        default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="COPY each chunk as soon as it is written, over --workers connections, while the export "
        "goes on (false: chunks are copied by their CopyChunkToPostgres tasks once all are exported, which "
        "spreads the copies over every worker sharing a luigid).",
    )


def pg_dsn() -> str:
    """The configured target DSN, or '' when none is configured (use the embedded Postgres)."""
    return os.environ.get("PIPELINE_PG_DSN") or postgres().dsn


def state_dir() -> Path:
    return Path(os.environ.get("PIPELINE_STATE_DIR") or pipeline().state_dir).resolve()


def private_state_dir() -> Path:
    """The state dir, private to the running user: made 0700 (tightened, with a warning, where it is wider),
    and every file and folder this process makes there 0600 and 0700, whatever the umask was."""
    os.umask(0o077)
    path = state_dir()
    path.mkdir(parents=True, exist_ok=True)
    info = path.stat()
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
        log.warning("state directory %s was open to other users (mode %04o); made it private (0700)", path,
                    stat.S_IMODE(info.st_mode))
        path.chmod(0o700)
    return path


_URI_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide any password in a DSN (URI or key=value form) or in a message quoting one."""
    return _KV_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1***\2", text))
