"""``pghash`` computes exactly what PostgreSQL's text, float8, int4 and int8 hashes do, seeded, value by value."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pyarrow as pa
from helpers import query

from pipeline.verification.pghash import (
    float_hash_sum,
    float_hashes,
    hash_extended,
    hash_sum,
    int8_hashes,
    uint32_hashes,
)


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


def test_integer_hashes_and_seeds_match_the_server(db):
    rng = random.Random(5)
    int8 = [0, 1, -1, 2**63 - 1, -2**63, 2**32, -2**32] + [rng.randrange(-2**63, 2**63) for _ in range(300)]
    int4 = [0, 1, -1, 2**31 - 1, -2**31] + [rng.randrange(-2**31, 2**31) for _ in range(300)]
    texts = awkward_texts()[:300]
    for seed in (1, 14, 2**40 + 3, -7):
        assert int8_hashes(np.array(int8), seed).tolist() == [h for (h,) in query(
            db, "SELECT hashint8extended(v, %s) FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(v, i) ORDER BY i",
            (seed, int8))]
        assert uint32_hashes(np.array(int4), seed).tolist() == [h for (h,) in query(
            db, "SELECT hashint4extended(v, %s) FROM unnest(%s::int[]) WITH ORDINALITY AS u(v, i) ORDER BY i",
            (seed, int4))]
        assert hash_extended(pa.array(texts), seed).tolist() == [h for (h,) in query(
            db, 'SELECT hashtextextended(v COLLATE "C", %s) FROM unnest(%s::text[]) WITH ORDINALITY AS u(v, i) '
                "ORDER BY i", (seed, texts))]
        assert float_hashes(pa.array([0.0, -0.0, 2.5]), seed).to_pylist() == [h for (h,) in query(
            db, "SELECT hashfloat8extended(v, %s) FROM unnest('{0,-0,2.5}'::float8[]) WITH ORDINALITY AS u(v, i) "
                "ORDER BY i", (seed,))]
