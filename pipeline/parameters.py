"""The parameters every task of a load carries: what is loaded (table, source, chunk size, the fingerprint of its
files, the load's options) - its id - and, not significant, the indexes config/ declares for the table."""

from __future__ import annotations

from dataclasses import replace

import luigi

from .model.options import LoadOptions

# Parameter order is creation order; it is the order a task shows its parameters in logs and the visualiser.
TABLE = luigi.Parameter(description="Target table, schema.table")
CHUNK = luigi.IntParameter(description="Index of the chunk in the load's chunk set")
SOURCE = luigi.Parameter(description="Folder of Parquet files (absolute path)")
CHUNK_ROWS = luigi.IntParameter(description="Rows per CSV chunk, about")
FINGERPRINT = luigi.Parameter(description="Digest of the source files' names, sizes and mtimes")



class LoadOptionsParameter(luigi.Parameter):
    """A part of a load's ``LoadOptions``, shown and hashed as its canonical JSON (``LoadOptions.to_json``):
    ``declared`` - the primary key and indexes config/ declares, which shape the table but not what is loaded -
    or the rest."""

    def __init__(self, declared: bool, **kwargs):
        super().__init__(**kwargs)
        self.declared = declared

    def parse(self, x: str) -> LoadOptions:
        return self.normalize(LoadOptions.from_json(x))

    def serialize(self, x: LoadOptions) -> str:
        return x.to_json()

    def normalize(self, x) -> LoadOptions:
        x = LoadOptions.from_json(x) if isinstance(x, str) else x
        if self.declared:
            return LoadOptions(primary_key=x.primary_key, indexes=x.indexes)
        return replace(x, primary_key=(), indexes=())


OPTIONS = LoadOptionsParameter(False, default=LoadOptions(), description="How the table is loaded, from config/ "
                                "or the command line: mode (replace, append, merge), key, source_file_column, dedup, "
                                "bad-row budget (JSON; empty: a plain replace)")
# not significant (gokart's habit): a task's id names what is loaded, and these do not change it
DECLARED = LoadOptionsParameter(True, default=LoadOptions(), significant=False, description="The primary key and "
                                 "indexes config/ declares for the table, made when the load is published (JSON)")
