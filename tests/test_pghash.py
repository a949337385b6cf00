"""``pghash`` computes exactly what PostgreSQL's ``hashtextextended(text, 0)`` does, value by value."""

from __future__ import annotations

import math
import random
import struct

import pyarrow as pa
from helpers import query

from pipeline.pghash import float_hash_sum, float_hashes, hash_extended, hash_sum


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


def test_float_hash_matches_the_server_for_every_kind_of_double(db):
    rng = random.Random(11)
    doubles = [0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 0.1, -1 / 3]
    doubles += [rng.uniform(-1e6, 1e6) for _ in range(500)] + [struct.unpack("<d", rng.randbytes(8))[0]
                                                               for _ in range(500)]
    server = [h for (h,) in query(db, "SELECT hashfloat8extended(f, 0) FROM unnest(%s::float8[]) "
                                      "WITH ORDINALITY AS u(f, i) ORDER BY i", (doubles,))]
    assert float_hashes(pa.array(doubles + [None], pa.float64())).to_pylist() == server + [None]
    assert float_hash_sum(pa.array(doubles, pa.float64())) == sum(server)
    reals = pa.array(doubles[:300], pa.float32())  # real: hashed as PostgreSQL hashes real::float8
    server = [h for (h,) in query(db, "SELECT hashfloat8extended(f::float8, 0) FROM unnest(%s::real[]) "
                                      "WITH ORDINALITY AS u(f, i) ORDER BY i", (reals.to_pylist(),))]
    assert float_hashes(reals).to_pylist() == server
