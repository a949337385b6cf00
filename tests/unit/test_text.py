"""Each column kind's CSV field (``types.text.csv_field``): PostgreSQL's text form of the value, "" for NULL."""

from __future__ import annotations

import datetime as dt
import math
import random
import struct
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

from pipeline.types.mapping import pg_column
from pipeline.types.text import csv_field

EPOCH = dt.date(1970, 1, 1)
DAY_US = 86_400_000_000


def _days(day: dt.date, back_400_years: int = 0) -> int:
    """Days since 1970 of ``day``, moved back by whole 400-year cycles (146,097 days each): dates BC."""
    return (day - EPOCH).days - 146_097 * back_400_years


def _fields(arrow_type: pa.DataType, values: list, truncate_ns: bool = False) -> list[str]:
    """The CSV fields of ``values`` in a column of ``arrow_type``, mapped as planning maps it."""
    return csv_field(pg_column("c", arrow_type, truncate_ns), pa.array(values, arrow_type)).to_pylist()


# --- NULL and text --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arrow_type", [
    pa.bool_(), pa.int16(), pa.uint64(), pa.float64(), pa.decimal128(5, 2), pa.string(), pa.binary(), pa.date32(),
    pa.timestamp("us"), pa.timestamp("us", "UTC"), pa.time64("us"), pa.list_(pa.int8()),
    pa.map_(pa.string(), pa.int8()), pa.null(),
])
def test_null_is_the_empty_field_in_every_kind(arrow_type):
    assert _fields(arrow_type, [None, None]) == ["", ""]


def test_empty_values_are_not_null():
    assert _fields(pa.string(), [""]) == ['""']
    assert _fields(pa.binary(), [b""]) == ["\\x"]
    assert _fields(pa.list_(pa.int8()), [[]]) == ['"[]"']
    assert _fields(pa.map_(pa.string(), pa.int8()), [[]]) == ['"{}"']


def test_text_is_always_quoted_with_quotes_doubled():
    values = ["plain", "a,b", 'say "hi"', '"', "line 1\nline 2\r\n", "é€ 😀", " padded "]
    assert _fields(pa.string(), values) == [
        '"plain"', '"a,b"', '"say ""hi"""', '""""', '"line 1\nline 2\r\n"', '"é€ 😀"', '" padded "']
    assert _fields(pa.large_string(), ['x"y']) == ['"x""y"']


def test_dictionary_encoded_values_are_written_as_their_values():
    values = pa.array(["x", 'y"', "x", None]).dictionary_encode()
    assert csv_field(pg_column("c", values.type), values).to_pylist() == ['"x"', '"y"""', '"x"', ""]
    stamps = pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 600_000), None], pa.timestamp("ms")).dictionary_encode()
    assert csv_field(pg_column("c", stamps.type), stamps).to_pylist() == ["2024-01-02 03:04:05.6", ""]


# --- booleans and numbers -------------------------------------------------------------------------------------


def test_booleans():
    assert _fields(pa.bool_(), [True, False, None]) == ["true", "false", ""]


@pytest.mark.parametrize("arrow_type, values, expected", [
    (pa.int8(), [-128, 0, 127], ["-128", "0", "127"]),
    (pa.uint16(), [65_535], ["65535"]),
    (pa.int64(), [-2**63, 2**63 - 1], ["-9223372036854775808", "9223372036854775807"]),
    (pa.uint64(), [2**64 - 1], ["18446744073709551615"]),
])
def test_integers_are_plain_digits(arrow_type, values, expected):
    assert _fields(arrow_type, values) == expected


@pytest.mark.parametrize("arrow_type, values, expected", [
    (pa.decimal128(5, 2), ["1.50", "-0.01", "0.00", "-999.99"], ["1.50", "-0.01", "0.00", "-999.99"]),
    (pa.decimal128(10, 0), ["1234567890"], ["1234567890"]),
    # Arrow's own text would be 1E-10: PostgreSQL prints numeric(38,10) as plain digits, with its scale
    (pa.decimal128(38, 10), ["0.0000000001", "1.0000000000", "-0.0000000100"],
     ["0.0000000001", "1.0000000000", "-0.0000000100"]),
    (pa.decimal256(38, 3), ["-12345678901234567890123456789012345.001"], ["-12345678901234567890123456789012345.001"]),
])
def test_decimals_are_plain_digits_with_their_scale(arrow_type, values, expected):
    assert _fields(arrow_type, [Decimal(v) for v in values]) == expected


def test_floats_special_values_and_shortest_text():
    values = [0.1, 1 / 3, 2.5, 123456.0, -0.0, 0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308,
              1e16, 1e-7]
    assert _fields(pa.float64(), values) == [
        "0.1", "0.3333333333333333", "2.5", "123456", "-0", "0", "nan", "inf", "-inf", "5e-324",
        "1.7976931348623157e+308", "1e+16", "1e-7"]
    # float32: the shortest text of the float32 itself, not of the double it widens to
    assert _fields(pa.float32(), [0.1, 1 / 3, -0.0, math.nan, 3.4028234663852886e38, 1e-45]) == [
        "0.1", "0.33333334", "-0", "nan", "3.4028235e+38", "1e-45"]


def test_floats_read_back_to_the_same_bits():
    rng = random.Random(20240229)
    doubles = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(2000)]
    doubles = [d for d in doubles if not math.isnan(d)] + [2.0**-1074, 2.0**-1022, 2.0**53 + 2, -0.0, 0.1 + 0.2]
    assert [struct.pack("<d", float(text)) for text in _fields(pa.float64(), doubles)] == [
        struct.pack("<d", d) for d in doubles]
    singles = np.frombuffer(rng.randbytes(4 * 2000), dtype=np.float32)
    singles = singles[~np.isnan(singles)]
    texts = _fields(pa.float32(), singles.tolist())
    assert np.array_equal(np.array([np.float32(t) for t in texts]).view(np.uint32), singles.view(np.uint32))


# --- dates, timestamps and times ------------------------------------------------------------------------------


def test_dates_in_the_common_years():
    assert _fields(pa.date32(), [dt.date(2024, 2, 29), dt.date(1, 1, 1), dt.date(9999, 12, 31), EPOCH]) == [
        "2024-02-29", "0001-01-01", "9999-12-31", "1970-01-01"]
    assert _fields(pa.date64(), [dt.date(2024, 2, 29)]) == ["2024-02-29"]


def test_dates_outside_the_years_1_to_9999_as_postgres_prints_them():
    year_1 = _days(dt.date(1, 1, 1))
    days = [_days(dt.date(357, 3, 15), back_400_years=1),  # astronomical year -43: 44 BC
            year_1 - 1, year_1 - 366,  # 1 BC (astronomical year 0) is a leap year
            _days(dt.date(87, 11, 24), back_400_years=12),  # 4714-11-24 BC: Julian day 0, PostgreSQL's first
            _days(dt.date(9999, 12, 31)) + 1,
            2_145_042_905,  # 5874897-12-31: PostgreSQL's last date
            None, 0]  # a NULL and a common date in the same batch keep their fields
    assert _fields(pa.date32(), days) == ["0044-03-15 BC", "0001-12-31 BC", "0001-01-01 BC", "4714-11-24 BC",
                                          "10000-01-01", "5874897-12-31", "", "1970-01-01"]


def test_timestamps_keep_their_microseconds_without_trailing_zeros():
    values = [dt.datetime(2024, 1, 2, 3, 4, 5, 123), dt.datetime(2024, 1, 2, 3, 4, 10),
              dt.datetime(2024, 1, 2, 10, 0, 0, 500_000), dt.datetime(2000, 1, 1), dt.datetime(2020, 10, 10, 10, 10)]
    assert _fields(pa.timestamp("us"), values) == [
        "2024-01-02 03:04:05.000123", "2024-01-02 03:04:10", "2024-01-02 10:00:00.5", "2000-01-01 00:00:00",
        "2020-10-10 10:10:00"]
    assert _fields(pa.timestamp("s"), [dt.datetime(2024, 1, 2, 3, 4, 5)]) == ["2024-01-02 03:04:05"]
    assert _fields(pa.timestamp("ms"), [dt.datetime(2024, 1, 2, 3, 4, 5, 120_000)]) == ["2024-01-02 03:04:05.12"]


def test_zoned_timestamps_are_written_in_utc():
    paris = ZoneInfo("Europe/Paris")
    values = [dt.datetime(2024, 6, 1, 12, 0, tzinfo=paris), dt.datetime(2024, 1, 1, 0, 30, 0, 7, tzinfo=paris)]
    assert _fields(pa.timestamp("us", "Europe/Paris"), values) == [
        "2024-06-01 10:00:00+00", "2023-12-31 23:30:00.000007+00"]
    assert _fields(pa.timestamp("ms", "UTC"), [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]) == ["2024-01-01 00:00:00+00"]


def test_timestamps_outside_the_years_1_to_9999():
    micros = [_days(dt.date(1, 1, 1)) * DAY_US - 1, (_days(dt.date(9999, 12, 31)) + 1) * DAY_US + 1, None,
              DAY_US + 5]
    assert _fields(pa.timestamp("us"), micros) == [
        "0001-12-31 23:59:59.999999 BC", "10000-01-01 00:00:00.000001", "", "1970-01-02 00:00:00.000005"]
    # PostgreSQL puts the zone before the era
    assert _fields(pa.timestamp("us", "UTC"), micros[:1]) == ["0001-12-31 23:59:59.999999+00 BC"]


def test_nanoseconds_are_loaded_with_their_microseconds_rounded_down():
    assert _fields(pa.timestamp("ns"), [-1, 1_999, 1_000_000_000], truncate_ns=True) == [
        "1969-12-31 23:59:59.999999", "1970-01-01 00:00:00.000001", "1970-01-01 00:00:01"]
    assert _fields(pa.time64("ns"), [1_999, 3_600_000_000_001], truncate_ns=True) == [
        "00:00:00.000001", "01:00:00"]


def test_times_of_day():
    values = [dt.time(13, 45, 0, 120_000), dt.time(0, 0), dt.time(23, 59, 59, 999_999), dt.time(10, 0)]
    assert _fields(pa.time64("us"), values) == ["13:45:00.12", "00:00:00", "23:59:59.999999", "10:00:00"]
    assert _fields(pa.time32("s"), [dt.time(1, 2, 3)]) == ["01:02:03"]
    assert _fields(pa.time32("ms"), [dt.time(1, 2, 3, 4_000)]) == ["01:02:03.004"]


# --- bytes and nested values ----------------------------------------------------------------------------------


def test_bytes_are_lowercase_hex_after_backslash_x():
    assert _fields(pa.binary(), [b"\x00\xff\x10", b'"a,b"']) == ["\\x00ff10", "\\x22612c6222"]
    assert _fields(pa.binary(3), [b"abc"]) == ["\\x616263"]
    assert _fields(pa.large_binary(), [b"\xab"]) == ["\\xab"]


def test_lists_are_jsonb_text_quoted():
    assert _fields(pa.list_(pa.int32()), [[1, None, 3]]) == ['"[1, null, 3]"']
    assert _fields(pa.list_(pa.float64()), [[-0.0, math.inf, math.nan, 0.1]]) == [
        '"[0, ""Infinity"", ""NaN"", 0.1]"']
    assert _fields(pa.list_(pa.decimal128(5, 2)), [[Decimal("1.50")]]) == ['"[1.50]"']
    assert _fields(pa.list_(pa.binary()), [[b"\x01\xab"]]) == ['"[""\\\\x01ab""]"']
    utc = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    assert _fields(pa.list_(pa.timestamp("us", "UTC")), [[utc]]) == ['"[""2024-01-02T03:04:05.000006+00:00""]"']


def test_structs_and_maps_are_jsonb_objects_with_jsonbs_key_order():
    struct_type = pa.struct([("bb", pa.int8()), ("a", pa.string()), ("c", pa.bool_())])
    # keys shorter first, then bytewise; the string escaped as JSON, then its quotes doubled for CSV
    assert _fields(struct_type, [{"bb": 1, "a": 'x"y\n', "c": None}]) == [
        '"{""a"": ""x\\""y\\n"", ""c"": null, ""bb"": 1}"']
    assert _fields(pa.map_(pa.string(), pa.int32()), [[("bb", 1), ("a", 2)]]) == ['"{""a"": 2, ""bb"": 1}"']
    assert _fields(pa.map_(pa.int32(), pa.date32()), [[(10, None), (2, dt.date(2024, 1, 31))]]) == [
        '"{""2"": ""2024-01-31"", ""10"": null}"']
