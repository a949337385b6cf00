"""The numpy encoder of pgpq's evaluation (``devtools.encoders``) writes pgpq's very bytes, type by type, so the
evaluation cannot drift from what the chunks hold. A real pgpq, no mocks."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pgpq import ArrowToPostgresBinaryEncoder

from pipeline.devtools import encoders

EDGES, JSONB = encoders.edge_batch()


@pytest.mark.parametrize("name", EDGES.schema.names)
def test_every_types_edge_values_are_encoded_as_pgpq_encodes_them(name):
    batch = EDGES.select([name])
    theirs = encoders.pgpq_tuples(batch, JSONB & {name})
    assert theirs.startswith(b"\x00\x01") and len(theirs) > 6 * batch.num_rows  # one field a row: not vacuous
    assert encoders.encode_batch(batch, JSONB & {name}) == theirs


@pytest.mark.parametrize("start, length", [(0, None), (3, 5), (1, 0)])
def test_a_batch_of_every_type_and_its_slices_are_encoded_as_pgpq_encodes_them(start, length):
    batch = EDGES.slice(start, length)  # a slice: buffers read from its offset
    assert encoders.encode_batch(batch, JSONB) == encoders.pgpq_tuples(batch, JSONB)


def test_the_header_and_trailer_are_pgpqs():
    encoder = ArrowToPostgresBinaryEncoder(EDGES.select(["int16"]).schema)
    assert (encoders.header(), encoders.trailer()) == (encoder.write_header(), encoder.finish())


def test_a_different_value_is_seen():
    one, two = (pa.RecordBatch.from_arrays([pa.array([v], pa.int32())], names=["n"]) for v in (1, 2))
    assert encoders.encode_batch(one, set()) != encoders.pgpq_tuples(two, set())


@pytest.mark.parametrize("values", [pa.array([-2**31], pa.int32()).cast(pa.date32()),
                                    pa.array([-2**63], pa.int64()).cast(pa.timestamp("us", "UTC"))])
def test_a_value_pgpq_refuses_is_refused(values):
    batch = pa.RecordBatch.from_arrays([values], names=["v"])
    with pytest.raises(ValueError, match="Underflow"):
        encoders.pgpq_tuples(batch, set())
    with pytest.raises(ValueError, match="before 2000-01-01"):
        encoders.encode_batch(batch, set())
