"""Lists, structs and maps as ``jsonb``: every value written in PostgreSQL's own jsonb output form.

The export writes a nested value as the very text ``jsonb::text`` prints for it - keys
ordered as jsonb orders them (shorter first, then bytewise), ``", "`` and ``": "`` between
items, strings escaped as PostgreSQL escapes them, numbers as plain decimals. So the
loaded value prints back byte for byte as it was written, and the row checksum of
``verification`` covers nested columns like any other.

Values inside follow PostgreSQL's ``to_jsonb``: integers and decimals are exact JSON
numbers, floats their shortest round-trip decimal (NaN and ±Infinity, which JSON has no
number for, become the strings "NaN", "Infinity", "-Infinity"; -0.0 becomes 0), bytes the
string "\\x<hex>", dates "YYYY-MM-DD", timestamps "YYYY-MM-DDTHH:MM:SS[.ffffff]" (zoned ones
in UTC with "+00:00"), times "HH:MM:SS[.ffffff]". A struct is an object keyed by its field
names; a map is an object keyed by its keys' text. A NULL list, struct or map is SQL NULL;
an empty one is ``[]`` or ``{}``; a NULL inside is JSON ``null``.

Refused, naming the column: a string holding NUL (jsonb cannot store ``\\u0000``) and a map
holding one key twice (jsonb keeps one) - both written with a raw control character no
valid text holds (NUL as it is, ``DUPLICATE_KEY`` in front), which the export counts and
refuses naming the column and chunk (``verification.stats.Refusal``) - and, while planning, a
struct with two fields of one name.

The per-batch core (``engines.core``) calls ``json_texts`` on each batch, in the Arrow engine's
process or on Spark's executors, so both engines write the same text. (Spark's tasks get this
module by value: what ``json_texts`` uses must not import the rest of the package.)
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from ..errors import UnsupportedTypeError
from . import temporal


class NestedValueError(ValueError):
    """A nested value jsonb cannot hold; the message names the column and says why."""


def is_nested(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
            or pa.types.is_struct(t) or pa.types.is_map(t))


def check(name: str, t: pa.DataType, leaf: Callable[[pa.DataType], object]) -> None:
    """Refuse a nested type holding something jsonb cannot hold exactly; ``leaf`` checks a scalar
    type (``mapping``'s, which raises for an unmappable one)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UnsupportedTypeError(f"column {name!r} has a struct with two fields named {twice[0]!r} ({t}); "
                                       "a jsonb object keeps only one")
        for i in range(t.num_fields):
            check(name, t.field(i).type, leaf)
    elif pa.types.is_map(t):
        if is_nested(t.key_type):
            raise UnsupportedTypeError(f"column {name!r} has a map keyed by {t.key_type} ({t}); "
                                       "a jsonb object key must be a single value")
        check(name, t.key_type, leaf)
        check(name, t.item_type, leaf)
    elif is_nested(t):
        check(name, t.value_type, leaf)
    elif (pa.types.is_timestamp(t) or pa.types.is_time(t)) and t.unit == "ns":
        raise UnsupportedTypeError(f"column {name!r} holds nanoseconds inside a list, struct or map ({t}); "
                                   "PostgreSQL keeps microseconds, so loading it would drop digits")
    elif pa.types.is_null(t):
        return
    else:
        leaf(t)


# --- the jsonb text of one value ---------------------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES.update({chr(c): f"\\u{c:04x}" for c in range(1, 0x20) if chr(c) not in _ESCAPES})
_TRANSLATE = str.maketrans(_ESCAPES)
_SPECIAL_FLOATS = {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"'}
DUPLICATE_KEY = "\x01"  # marks a map holding one key twice; valid text escapes every control character


def _string(value: str) -> str:
    """A JSON string as jsonb prints it. A NUL stays a NUL: jsonb cannot hold one, and the export
    refuses a value holding one (``verification.stats.Refusal``), naming the column and chunk."""
    return '"' + value.translate(_TRANSLATE) + '"'


def _float(width: type):
    def encode(value: float) -> str:
        if value != value or value in (float("inf"), float("-inf")):
            return _SPECIAL_FLOATS[repr(value)]
        text = np.format_float_positional(width(value), unique=True, trim="-")
        return "0" if text == "-0" else text
    return encode


def _map_key(encoded: str) -> tuple[bytes, str]:
    """(the object key's bytes, its JSON text) for a map key's JSON text: a string key as it is,
    any other key as the text of its JSON value ("1", "true", "2024-01-31")."""
    if encoded.startswith('"'):
        return json.loads(encoded, strict=False).encode(), encoded  # a NUL is read here, refused later
    return encoded.encode(), '"' + encoded + '"'


def _object(items: list[tuple[bytes, str, str]]) -> str:
    """(key bytes, key JSON text, value JSON text) items as a jsonb object prints: keys ordered
    shorter first, then bytewise."""
    items.sort(key=lambda item: (len(item[0]), item[0]))
    return "{" + ", ".join(f"{key}: {value}" for _, key, value in items) + "}"


def encoder(t: pa.DataType, column: str) -> Callable[[object], str]:
    """A function giving the jsonb text of a (non-null) Python value of Arrow type ``t``."""
    if pa.types.is_dictionary(t):
        return encoder(t.value_type, column)
    if pa.types.is_struct(t):
        fields = [(f.name.encode(), _string(f.name), f.name, _nullable(encoder(f.type, column)))
                  for f in (t.field(i) for i in range(t.num_fields))]
        return lambda v: _object([(raw, key, enc(v[name])) for raw, key, name, enc in fields])
    if pa.types.is_map(t):
        key_enc, item_enc = encoder(t.key_type, column), _nullable(encoder(t.item_type, column))

        def encode_map(v) -> str:
            items = [(*_map_key(key_enc(k)), item_enc(i)) for k, i in v]
            twice = len({raw for raw, _, _ in items}) < len(items)
            return (DUPLICATE_KEY if twice else "") + _object(items)
        return encode_map
    if is_nested(t):
        item = _nullable(encoder(t.value_type, column))
        return lambda v: "[" + ", ".join(item(x) for x in v) + "]"
    if pa.types.is_boolean(t):
        return lambda v: "true" if v else "false"
    if pa.types.is_integer(t):
        return str
    if pa.types.is_floating(t):
        return _float(np.float32 if pa.types.is_float32(t) else np.float64)
    if pa.types.is_decimal(t):
        return lambda v: format(v, "f")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _string
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return lambda v: '"\\\\x' + v.hex() + '"'
    if pa.types.is_date(t):  # dates, timestamps and times arrive as integers (see ``_as_integers``)
        per_day = 86_400_000 if pa.types.is_date64(t) else 1
        return lambda v: '"' + temporal.date_text(v // per_day) + '"'
    if pa.types.is_timestamp(t) or pa.types.is_time(t):
        # ns: Spark hands its UDF times of day as time64[ns] (whole microseconds; the files' ns are refused)
        per, times = {"s": (1, 1_000_000), "ms": (1, 1_000), "us": (1, 1), "ns": (1_000, 1)}[t.unit]
        if pa.types.is_time(t):
            return lambda v: '"' + temporal.time_text(v // per * times) + '"'
        zone = "+00:00" if t.tz else ""
        return lambda v: '"' + temporal.timestamp_text(v // per * times, "T", zone) + '"'
    if pa.types.is_null(t):
        return lambda v: "null"
    raise NestedValueError(f"column {column!r} holds {t} inside a list, struct or map, which has no jsonb form")


def _as_integers(t: pa.DataType) -> pa.DataType:
    """``t`` with every date, timestamp and time inside replaced by the integer Arrow stores for it: Python's
    datetime ends at year 9999, PostgreSQL's at 294276 AD."""
    if pa.types.is_dictionary(t):
        return _as_integers(t.value_type)
    if pa.types.is_struct(t):
        return pa.struct([t.field(i).with_type(_as_integers(t.field(i).type)) for i in range(t.num_fields)])
    if pa.types.is_map(t):
        key, item = t.key_field, t.item_field
        return pa.map_(key.with_type(_as_integers(key.type)), item.with_type(_as_integers(item.type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(_as_integers(t.value_type)), t.list_size)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        kind = pa.large_list if pa.types.is_large_list(t) else pa.list_
        return kind(t.value_field.with_type(_as_integers(t.value_type)))
    if pa.types.is_date32(t) or pa.types.is_time32(t):
        return pa.int32()
    if pa.types.is_temporal(t):
        return pa.int64()
    return t


def _nullable(encode: Callable[[object], str]) -> Callable[[object], str]:
    return lambda v: "null" if v is None else encode(v)


def json_texts(values: pa.Array, column: str) -> pa.Array:
    """The jsonb text of every value of a nested array (NULL stays NULL). Raises ``NestedValueError``
    for a value jsonb cannot hold or Python cannot represent (a date past year 9999, say)."""
    encode = encoder(values.type, column)
    try:
        items = values.cast(_as_integers(values.type)).to_pylist()
    except (ValueError, OverflowError, pa.ArrowException) as exc:
        raise NestedValueError(f"column {column!r} holds a value inside a list, struct or map that cannot be "
                               f"read exactly ({exc})") from exc
    return pa.array([None if v is None else encode(v) for v in items], pa.string())
