"""PostgreSQL's own hash functions, computed over a whole Arrow or numpy array at once.

PostgreSQL hashes with Bob Jenkins' lookup3 (``hash_bytes_extended`` and
``hash_bytes_uint32_extended`` in src/common/hashfn.c): ``hashtextextended`` for text,
``hashfloat8extended``, ``hashint4extended``, ``hashint8extended`` (also behind the
timestamp and time hashes), each with a 64-bit seed. They cost the server almost nothing
per value where ``md5()`` costs it about 1.8 µs a row. Computing the same functions here,
vectorised with numpy over every value of a batch, lets the Arrow engine's content
checksum be recomputed by PostgreSQL cheaply. This is the little-endian form of the
functions (every server PostgreSQL runs on today); ``verification.scan`` checks the server agrees
on known values before relying on them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_U32 = np.uint32
# Bytes of the last (partial) 12-byte block that belong to the key, as masks on its three words.
_TAIL = np.arange(12)
_MASKS = [np.array([(1 << (8 * min(max(t - 4 * w, 0), 4))) - 1 for t in _TAIL], dtype=np.uint64).astype(_U32)
          for w in range(3)]


def _rot(x: np.ndarray, k: int) -> np.ndarray:
    return (x << _U32(k)) | (x >> _U32(32 - k))


def _mix(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """lookup3's mix(), in place."""
    a -= c; a ^= _rot(c, 4); c += b  # noqa: E702 - kept in the shape of the C macro
    b -= a; b ^= _rot(a, 6); a += c  # noqa: E702
    c -= b; c ^= _rot(b, 8); b += a  # noqa: E702
    a -= c; a ^= _rot(c, 16); c += b  # noqa: E702
    b -= a; b ^= _rot(a, 19); a += c  # noqa: E702
    c -= b; c ^= _rot(b, 4); b += a  # noqa: E702


def _final(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """lookup3's final(), in place."""
    c ^= b; c -= _rot(b, 14)  # noqa: E702
    a ^= c; a -= _rot(c, 11)  # noqa: E702
    b ^= a; b -= _rot(a, 25)  # noqa: E702
    c ^= b; c -= _rot(b, 16)  # noqa: E702
    a ^= c; a -= _rot(c, 4)  # noqa: E702
    b ^= a; b -= _rot(a, 14)  # noqa: E702
    c ^= b; c -= _rot(b, 24)  # noqa: E702


def _start(lengths: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lookup3's a, b, c before the key's bytes, for keys of ``lengths`` bytes and ``seed``."""
    a = (np.uint64(0x9E3779B9 + 3923095) + lengths.astype(np.uint64)).astype(_U32)
    b, c = a.copy(), a.copy()
    if seed:
        a += _U32((seed >> 32) & 0xFFFFFFFF)
        b += _U32(seed & 0xFFFFFFFF)
        _mix(a, b, c)
    return a, b, c


def _result(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return ((b.astype(np.uint64) << np.uint64(32)) | c.astype(np.uint64)).view(np.int64)


def hash_extended(values: pa.Array, seed: int = 0) -> np.ndarray:
    """``hashtextextended(v, seed)`` of every (non-null) value of a string or binary array, as int64."""
    values = values.cast(pa.binary())
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=n + 1, offset=4 * values.offset).astype(
        np.int64)
    data = values.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8, count=int(offsets[-1])) if data is not None else np.zeros(0, np.uint8)
    padded = np.concatenate([raw, np.zeros(16, np.uint8)])  # the last block may read past the data
    result = np.empty(n, dtype=np.int64)
    # Keys are read a 4-byte word at a time, from the one of 4 shifted views in which they start aligned.
    for shift in range(4):
        rows = np.flatnonzero(offsets[:-1] % 4 == shift)
        if len(rows):
            view = padded[shift:shift + (len(padded) - shift) // 4 * 4].view("<u4")
            result[rows] = _hash_aligned(view, (offsets[rows] - shift) // 4, offsets[rows + 1] - offsets[rows], seed)
    return result


def _hash_aligned(view: np.ndarray, first_word: np.ndarray, lengths: np.ndarray, seed: int) -> np.ndarray:
    """hash_bytes_extended(key, seed) of the keys starting at ``view[first_word]``, ``lengths`` bytes long."""
    full = lengths // 12
    order = np.argsort(-full, kind="stable")  # longest first: the keys that have a block k are a prefix
    first_word, lengths, full = first_word[order], lengths[order], full[order]
    a, b, c = _start(lengths, seed)
    having = np.searchsorted(-full, -np.arange(int(full.max(initial=0))), side="left")  # keys with block k
    for k, count in enumerate(having):
        m = int(count)
        at = first_word[:m] + 3 * k
        av, bv, cv = a[:m], b[:m], c[:m]
        av += view[at]
        bv += view[at + 1]
        cv += view[at + 2]
        _mix(av, bv, cv)
    tail = lengths % 12
    at = first_word + 3 * full
    a += view[at] & _MASKS[0][tail]
    b += view[at + 1] & _MASKS[1][tail]
    c += (view[at + 2] & _MASKS[2][tail]) << _U32(8)
    _final(a, b, c)
    hashed = np.empty(len(order), dtype=np.int64)
    hashed[order] = _result(b, c)
    return hashed


def hash_sum(values: pa.Array) -> int:
    """Exact sum of ``hashtextextended(v, 0)`` over an array's values (what SQL's ``sum()`` gives)."""
    return exact_sum(hash_extended(values))


def exact_sum(hashed: np.ndarray) -> int:
    high, low = hashed >> np.int64(32), hashed & np.int64(0xFFFFFFFF)  # each sum fits an int64 below 2**31 rows
    return (int(high.sum()) << 32) + int(low.sum())


def float_hashes(values: pa.Array, seed: int = 0) -> pa.Array:
    """``hashfloat8extended(v::float8, seed)`` of every value of a float array (NULL stays NULL): the hash
    of the double's 8 bytes, with every NaN hashed as PostgreSQL's one NaN and ±0 as the seed."""
    doubles = values.cast(pa.float64())  # float32 widens exactly, as PostgreSQL's real::float8 does
    numbers = doubles.fill_null(0.0).to_numpy(zero_copy_only=False).copy()
    numbers[np.isnan(numbers)] = np.nan  # 0x7ff8000000000000, PostgreSQL's get_float8_nan()
    # An 8-byte key is no full 12-byte block, only lookup3's tail: its two words added to a and b, then final().
    words = np.ascontiguousarray(numbers, dtype="<f8").view("<u4").reshape(-1, 2)
    a, b, c = _start(np.full(len(numbers), 8), seed)
    a += words[:, 0]
    b += words[:, 1]
    _final(a, b, c)
    hashed = _result(b, c)
    hashed[numbers == 0] = seed
    return pa.array(hashed, pa.int64(), mask=doubles.is_null().to_numpy(zero_copy_only=False))


def float_hash_sum(values: pa.Array) -> int:
    """Exact sum of ``hashfloat8extended(v::float8, 0)`` over an array's non-null values."""
    return exact_sum(float_hashes(values).drop_null().to_numpy())


def uint32_hashes(keys: np.ndarray, seed: int) -> np.ndarray:
    """``hash_uint32_extended(k, seed)``: PostgreSQL's hashint4extended (hashint2extended, the date
    hash) of 32-bit keys (int32 values taken as their two's-complement bits)."""
    a, b, c = _start(np.full(len(keys), 4), seed)
    a += keys.astype(np.int32).view(_U32)
    _final(a, b, c)
    return _result(b, c)


def int8_hashes(values: np.ndarray, seed: int) -> np.ndarray:
    """``hashint8extended(v, seed)`` (also PostgreSQL's timestamp and time hash): the high half folded
    into the low half, then hashed as a 32-bit key."""
    values = values.astype(np.int64)
    low = (values & np.int64(0xFFFFFFFF)).astype(np.uint64).astype(_U32)
    high = (values >> np.int64(32)).astype(np.int64).view(np.uint64).astype(_U32)
    low ^= np.where(values >= 0, high, ~high)
    return uint32_hashes(low.view(np.int32), seed)
