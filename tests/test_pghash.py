"""``pghash`` computes exactly what PostgreSQL's ``hashtextextended(text, 0)`` does, value by value."""

from __future__ import annotations

import random

import pyarrow as pa
from helpers import query

from pipeline.pghash import hash_extended, hash_sum


def awkward_texts() -> list[str]:
    rng = random.Random(7)
    alphabet = 'abcXYZ019,;"\\\' \t\n\r\x01é中😀'
    texts = ["", "a", "ab", "abc", "abcd", "x" * 11, "x" * 12, "y" * 13, "z" * 24, "w" * 5000, "é😀中文"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 90))) for _ in range(2000)]
    return texts


def test_hash_matches_the_server_for_every_length_and_alignment(db):
    texts = awkward_texts()
    server = [h for (h,) in query(db, 'SELECT hashtextextended(t COLLATE "C", 0) FROM unnest(%s::text[]) '
                                      "WITH ORDINALITY AS u(t, i) ORDER BY i", (texts,))]
    values = pa.array(texts)
    assert hash_extended(values).tolist() == server
    for start in (1, 2, 3, 5):  # sliced arrays: the values start at other byte alignments
        assert hash_extended(values.slice(start)).tolist() == server[start:]
    assert hash_sum(values) == sum(server)
    assert hash_extended(pa.array([], pa.string())).tolist() == []
