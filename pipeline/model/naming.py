"""Table names as PostgreSQL reads them: ``schema.table`` with optional double quotes.

Unquoted parts fold to lower case, quoted parts keep their exact spelling (``""`` is a
quote), exactly like SQL. Names only ever reach SQL through ``psycopg2.sql.Identifier``.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

from psycopg2 import sql

from ..errors import ConfigError
from ..types.mapping import MAX_IDENTIFIER

_PART = re.compile(r'\s*(?:"((?:[^"]|"")+)"|([^".\s]+))\s*')


class TableName(NamedTuple):
    schema: str
    name: str

    @classmethod
    def parse(cls, text: str) -> TableName:
        parts: list[str] = []
        pos = 0
        while True:
            match = _PART.match(text, pos)
            if not match:
                raise ConfigError(f"table name {text!r} is not of the form schema.table")
            quoted, bare = match.groups()
            parts.append(quoted.replace('""', '"') if quoted is not None else bare.lower())
            pos = match.end()
            if pos == len(text):
                break
            if text[pos] != ".":
                raise ConfigError(f"table name {text!r} is not of the form schema.table")
            pos += 1
        if len(parts) != 2:
            raise ConfigError(f"table name {text!r} must name a schema and a table, like product.product_master")
        for part in parts:
            if len(part.encode()) > MAX_IDENTIFIER:
                raise ConfigError(f"name {part!r} in {text!r} is longer than PostgreSQL's 63 bytes")
        return cls(parts[0], parts[1])

    def __str__(self) -> str:
        return ".".join(_show(p) for p in self)

    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def slug(self) -> str:
        """A file-system-safe, unique directory name for this table."""
        readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.schema}.{self.name}")[:80]
        digest = hashlib.sha256(f"{self.schema}\0{self.name}".encode()).hexdigest()[:8]
        return f"{readable}-{digest}"


def _show(part: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", part):
        return part
    return '"' + part.replace('"', '""') + '"'
