"""pgpq against an encoder of our own, in numpy: which should write the binary COPY chunks (``engines.binary``)?

``encode_batch`` writes the tuples of a batch of the Arrow types ``binary._binary_input`` produces: each column's
lengths and bytes, scattered into one flat buffer by offset arithmetic (a loop per column and per base-10000 digit
of a decimal, none per value). ``python -m pipeline.devtools.encoders [--rows N]`` prints whether both encoders
write the same bytes, and their CPU time (least of three runs), for each type's edge values cycled to N rows, each
column of N rows of the benchmark's wide dataset cast as ``BinaryWriter.write`` casts them, and that whole batch;
then a verdict. Fidelity is byte identity with pgpq, whose output the project's tests load into PostgreSQL.
"""

from __future__ import annotations

import argparse
import io
import time
import timeit
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engines.binary import BinaryWriter, _binary_input, encoder
from ..engines.core import loadable
from ..types.mapping import pg_column
from ..verification.batch import PG_EPOCH_DAYS as _EPOCH_DAYS
from ..verification.batch import PG_EPOCH_MICROS as _EPOCH_MICROS
from .bench_data import wide_batch

_FIXED = {pa.int16(): ("i2", 0), pa.int32(): ("i4", 0), pa.int64(): ("i8", 0), pa.float32(): ("f4", 0),
          pa.float64(): ("f8", 0), pa.date32(): ("i4", _EPOCH_DAYS), pa.time64("us"): ("i8", 0)}


class Piece(NamedTuple):
    """One column's fields: each row's length word (-1: NULL) and where its value's bytes lie in ``data``."""

    sizes: np.ndarray  # int64, the lead included
    data: np.ndarray  # uint8: (rows, width) for a fixed width, else flat
    starts: np.ndarray | None  # each row's first byte in a flat ``data``; None: fixed width
    lead: bytes = b""  # written before every value: jsonb's version byte


def header() -> bytes:
    """The signature, no flags, no header extension."""
    return b"PGCOPY\n\xff\r\n\x00" + bytes(8)


def trailer() -> bytes:
    """A field count of -1: no more tuples."""
    return b"\xff\xff"


def _bits(values: pa.Array, buffer: int) -> np.ndarray:
    """A bitmap of the array (0: validity, all set when absent; 1: booleans) as one bool per row of its slice."""
    if (bitmap := values.buffers()[buffer]) is None:
        return np.ones(len(values), bool)
    return np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")[values.offset:][:len(values)].view(bool)


def _raw(values: pa.Array, dtype: np.dtype | str, extra: int = 0) -> np.ndarray:
    """The array's values buffer (offsets, for strings: ``extra`` = 1) as numpy, without a copy."""
    return np.frombuffer(values.buffers()[1], dtype, count=values.offset + len(values) + extra)[values.offset:]


def _fixed(values: pa.Array, code: str, shift: int) -> Piece:
    """A fixed-width value (numpy type ``code``), big-endian, moved to PostgreSQL's epoch by ``shift``."""
    raw, valid = _raw(values, f"={code}"), _bits(values, 0)
    if shift:  # only then: arithmetic would quieten a signalling NaN, which pgpq sends as it is
        if raw.min(initial=np.iinfo(raw.dtype).max, where=valid) < np.iinfo(raw.dtype).min + shift:  # as pgpq does
            raise ValueError(f"{values.type} value too far before 2000-01-01 for a PostgreSQL {raw.dtype}")
        raw = raw - raw.dtype.type(shift)
    return Piece(np.where(valid, raw.itemsize, -1), raw.astype(f">{code}")[:, None].view(np.uint8), None)


def _divmod(limbs: list[np.ndarray], divisor: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Long division of every row's integer (32-bit limbs, least significant first) by a divisor below 2**32: the
    remainders, and the quotient without the top limbs that are zero in every row (the digits' loop ends sooner)."""
    quotient, rest = [], np.zeros_like(limbs[0])
    for limb in reversed(limbs):
        top, rest = np.divmod((rest << 32) | limb, divisor)
        quotient.insert(0, top)
    while quotient and not quotient[-1].any():
        quotient.pop()
    return quotient, rest


def _numeric(values: pa.Array) -> Piece:
    """uint64 or decimal128 in numeric's send form: ndigits, weight, sign, dscale, then the base-10000 digits from
    the first non-zero one to the last (PostgreSQL strips zeros at both ends; zero has weight 0)."""
    if values.type == pa.uint64():
        words, negative, scale = [_raw(values, np.uint64)], np.zeros(len(values), bool), 0
    else:  # two's complement, low word first: the magnitude and the sign
        (low, high), scale = _raw(values, np.dtype((np.uint64, 2))).T, values.type.scale
        negative = (high >> 63) == 1
        words = np.where(negative, [~low + 1, ~high + (low == 0)], [low, high])
    pad = -scale % 4  # the zeros that put the point between two base-10000 digits: the last holds 4 - pad of ours
    limbs = [part for word in words for part in (word & 0xFFFF_FFFF, word >> 32)]  # 32 bits, least significant first
    groups, divisor = [], 10 ** (4 - pad)
    while limbs:
        limbs, rest = _divmod(limbs, divisor)
        groups.insert(0, rest.astype(np.int64) * (10_000 // divisor))
        divisor = 10_000
    digits = np.stack(groups, axis=1)  # most significant first
    n, m, nonzero = len(values), digits.shape[1], digits != 0
    some, first, last = nonzero.any(axis=1), nonzero.argmax(axis=1), m - 1 - nonzero[:, ::-1].argmax(axis=1)
    ndigits, weight = np.where(some, [last - first + 1, m - 1 - first - (scale + pad) // 4], 0)
    head = np.stack([ndigits, weight, np.where(negative & some, 0x4000, 0), np.full(n, max(scale, 0))], axis=1)
    kept = (np.arange(m) >= first[:, None]) & (np.arange(m) <= last[:, None]) & some[:, None]
    words = np.hstack([head, digits]).astype(">i2")[np.hstack([np.ones((n, 4), bool), kept])]
    sizes = 8 + 2 * ndigits
    return Piece(np.where(_bits(values, 0), sizes, -1), words.view(np.uint8), np.cumsum(sizes) - sizes)


def _piece(values: pa.Array, jsonb: bool) -> Piece:
    t = values.type
    if pa.types.is_timestamp(t) and t.unit == "us":  # zoned or not: the instant, µs since 2000-01-01 UTC
        return _fixed(values, "i8", _EPOCH_MICROS)
    if t in _FIXED:
        return _fixed(values, *_FIXED[t])
    if t == pa.uint64() or pa.types.is_decimal128(t):
        return _numeric(values)
    if t == pa.bool_():
        return Piece(np.where(_bits(values, 0), 1, -1), _bits(values, 1).view(np.uint8)[:, None], None)
    if t in (pa.large_string(), pa.large_binary()):  # text, bytea or jsonb (its version byte, then the text)
        offsets, lead = _raw(values, np.int64, extra=1), b"\x01" if jsonb else b""
        sizes = np.where(_bits(values, 0), np.diff(offsets) + len(lead), -1)
        return Piece(sizes, np.frombuffer(values.buffers()[2] or b"", np.uint8), offsets[:-1], lead)
    raise TypeError(f"no binary COPY encoding of {t} here")


def _put(out: np.ndarray, at: np.ndarray, rows: np.ndarray) -> None:
    """Write row i of ``rows`` (or its one row, broadcast) at ``out[at[i]:]``."""
    out[at[:, None] + np.arange(rows.shape[1])] = rows


def _scatter(out: np.ndarray, at: np.ndarray, piece: Piece) -> None:
    """Write one column's fields, each row's at ``at``: the length word, the lead, the value's bytes."""
    _put(out, at, piece.sizes.astype(">i4").view(np.uint8).reshape(-1, 4))
    valid = piece.sizes >= 0
    to = at[valid] + 4 + len(piece.lead)
    _put(out, to - len(piece.lead), np.frombuffer(piece.lead, np.uint8)[None, :])  # nothing but for jsonb
    if piece.starts is None:
        return _put(out, to, piece.data[valid])
    lengths, starts = piece.sizes[valid] - len(piece.lead), piece.starts[valid]
    source = np.arange(lengths.sum()) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    out[source + np.repeat(to - starts, lengths)] = piece.data[source]


def encode_batch(batch: pa.RecordBatch, jsonb: set[str]) -> bytes:
    """The batch's rows as binary COPY tuples; the columns named in ``jsonb`` (large strings) are sent as jsonb."""
    pieces = [_piece(batch.column(i), name in jsonb) for i, name in enumerate(batch.schema.names)]
    spans = [4 + np.maximum(p.sizes, 0) for p in pieces]
    sizes = 2 + sum(spans, np.zeros(batch.num_rows, np.int64))
    out, at = np.empty(int(sizes.sum()), np.uint8), np.cumsum(sizes) - sizes + 2
    _put(out, at - 2, np.array([len(pieces)], ">i2").view(np.uint8)[None, :])  # the field count
    for piece, span in zip(pieces, spans, strict=True):
        _scatter(out, at, piece)
        at += span
    return out.tobytes()


def pgpq_tuples(batch: pa.RecordBatch, jsonb: set[str]) -> bytes:
    """pgpq's tuples for the batch, its encoders chosen as ``BinaryWriter`` chooses them (it holds small output
    back until ``finish``: the batch's and the finish's bytes, without the trailer)."""
    theirs = encoder(batch.schema, jsonb)  # as BinaryWriter makes it
    theirs.write_header()
    return (theirs.write_batch(batch) + theirs.finish()).removesuffix(trailer())  # if pgpq ended otherwise: seen


def edge_batch(rows: int | None = None) -> tuple[pa.RecordBatch, set[str]]:
    """Every type's awkward values, a NULL among them, as one batch (each column cycled to ``rows``, by default the
    longest's length; named by its type), and the names of its jsonb columns."""
    nans = {"float": np.array([0x7FC << 20, 0xFFC << 20 | 1], np.uint32).view(np.float32),  # quiet, negative
            "double": np.array([0x7FF8 << 48, 0xFFF8 << 48 | 1, 0x7FF << 52 | 1], np.uint64).view(np.float64)}
    floats = {name: pa.concat_arrays([pa.array(v), pa.array([np.inf, -np.inf, -0.0, 0.0, 1 / 3, np.finfo(v.dtype).max,
              np.finfo(v.dtype).smallest_subnormal, None], pa.from_numpy_dtype(v.dtype))]) for name, v in nans.items()}
    ints = {str(t): pa.array([np.iinfo(t.to_pandas_dtype()).min, np.iinfo(t.to_pandas_dtype()).max, 0, -1, None], t)
            for t in (pa.int16(), pa.int32(), pa.int64())}
    days = [-2_440_588, -719_162, -1, 0, _EPOCH_DAYS, 2_932_896, 2_145_042_905, None]  # 4714 BC .. 5874897 AD
    micros = pa.array([-210_866_803_200_000_000, -62_135_596_800_000_000, -1, 0, _EPOCH_MICROS,
                       253_402_300_799_999_999, 2**63 - 1, None], pa.int64())  # 4714 BC, 1 AD, .., 9999, 294247
    decimals = {(1, 0): "0 9 -9", (12, 2): "-1.5 1.1 100000 9999999999.99 -0.01 0", (5, -2): "1.23E+4 -1E+2 0",
                (38, 0): f"0 -100 {10**38 - 1} {1 - 10**38} 1E+37", (38, 38): f"1E-38 -0.5 0.{'9' * 38} 0",
                (38, 10): "1234567890123456789012345678.0123456789 -1E-10 10000.0001 0"}
    columns = {**ints, **floats, "bool": pa.array([True, False, None]),
               "uint64": pa.array([0, 1, 9_999, 10_000, 10**19, 2**64 - 1, None], pa.uint64()),
               "large_string": pa.array(["", "é漢🎉", 'q "x"\t\n\\', "\x7f" * 300, None], pa.large_string()),
               "jsonb": pa.array(["{}", '{"a": [1, 2.5, null, "é"]}', '""', None], pa.large_string()),
               "large_binary": pa.array([b"", b"\x00\xff", bytes(range(256)), None], pa.large_binary()),
               "date32[day]": pa.array(days, pa.int32()).cast(pa.date32()),
               "time64[us]": pa.array([0, 1, 45_296_789_012, 86_399_999_999, 86_400_000_000, None], pa.time64("us")),
               "timestamp[us]": micros.cast(pa.timestamp("us")),
               "timestamp[us, tz=UTC]": micros.cast(pa.timestamp("us", "UTC")),
               **{f"decimal128({p}, {s})": pa.array(v.split() + [None]).cast(pa.decimal128(p, s))
                  for (p, s), v in decimals.items()}}
    rows = rows or max(map(len, columns.values()))
    return pa.RecordBatch.from_arrays([pc.take(a, pa.array(np.arange(rows) % len(a))) for a in columns.values()],
                                      names=list(columns)), {"jsonb"}


def wide(rows: int) -> tuple[pa.RecordBatch, bytes]:
    """The benchmark's wide rows cast as ``BinaryWriter.write`` casts them, and the whole chunk it writes."""
    batch = loadable(wide_batch(0, rows).combine_chunks().to_batches()[0])
    writer = BinaryWriter([pg_column(f.name, f.type) for f in batch.schema], io.BytesIO())
    cast = [_binary_input(writer.columns[i], batch.column(i), None) for i in writer.order]  # no JSON: no field
    writer.write(batch, [None] * batch.num_columns)
    writer.close()
    return pa.RecordBatch.from_arrays(cast, names=writer.names), writer.out.getvalue()


def _same(ours: bytes, theirs: bytes) -> str:
    if ours == theirs:
        return "identical"
    at = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(map(len, (ours, theirs))))
    return f"differs at byte {at} of {len(theirs)}: {ours[at:at + 8].hex()} vs {theirs[at:at + 8].hex()}"


def _row(label: str, batch: pa.RecordBatch, jsonb: set[str], differ: list[str]) -> tuple[float, float]:
    """Print one table row, noting a difference in ``differ``; return numpy's and pgpq's CPU µs per row."""
    verdict = _same(encode_batch(batch, jsonb), pgpq_tuples(batch, jsonb))
    differ += [] if verdict == "identical" else [label]
    cpu = [1e6 * min(timeit.repeat(lambda e=e: e(batch, jsonb), timer=time.process_time, repeat=3, number=1))
           / batch.num_rows for e in (encode_batch, pgpq_tuples)]
    print(f"| {label} | {verdict} | {cpu[0]:.4f} | {cpu[1]:.4f} | {cpu[0] / max(cpu[1], 1e-9):.1f} |")
    return cpu[0], cpu[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of each column timed, and of the wide batch")
    rows = parser.parse_args().rows
    (edges, jsonb), (batch, chunk), differ = edge_batch(rows), wide(rows), []  # the label of each difference
    print("| type (data) | identical? | numpy µs/value | pgpq µs/value | ratio numpy/pgpq |\n|---|---|---|---|---|")
    for name in edges.schema.names:
        _row(f"{name} (edge values)", edges.select([name]), jsonb & {name}, differ)
    for field in batch.schema:
        _row(f"{field.type} (wide `{field.name}`)", batch.select([field.name]), set(), differ)
    ours, theirs = _row("whole wide batch, µs per row", batch, set(), differ)
    if (whole := _same(header() + encode_batch(batch, set()) + trailer(), chunk)) != "identical":
        differ.append(f"the whole chunk (header, tuples, trailer) against BinaryWriter's: {whole}")
    faster = f"pgpq is {ours / theirs:.1f}x" if theirs < ours else f"numpy is {theirs / ours:.1f}x"
    print(f"\nVerdict: {faster} faster on the wide batch ({ours:.3f} vs {theirs:.3f} CPU µs/row, numpy vs pgpq); "
          f"fidelity: {'differs on ' + '; '.join(differ) if differ else 'byte-identical to pgpq on every type'}.")


if __name__ == "__main__":
    main()
