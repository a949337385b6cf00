"""Dates and times as PostgreSQL prints them, from the integers Arrow and Parquet store, for every year
PostgreSQL holds.

PostgreSQL's ``date`` and ``timestamp`` reach from 4714-11-24 BC (Julian day 0) to 5874897 AD and
294276 AD. It prints a year of five digits or more as it is (``290000-12-30 23:00:00``) and a year
before AD 1 with a BC suffix (``0044-03-15 BC``; astronomical year 0 is 1 BC). Arrow's and Spark's own
text forms cover only years 1-9999, so the export writes values outside those years with these
functions (computed from days or microseconds since 1970, proleptic Gregorian as everywhere here).

This module imports nothing of the package: ``nested`` uses it inside Spark's Python workers, which
receive both modules by value.
"""

from __future__ import annotations

DAY_MICROS = 86_400_000_000
MIN_DAYS = -2_440_588  # 4714-11-24 BC, Julian day 0: the first date and timestamp PostgreSQL holds
MAX_DATE_DAYS = 2_145_042_905  # 5874897-12-31, PostgreSQL's last date
# 0001-01-01 and 10000-01-01: Arrow's and Spark's own text forms cover the days between
YEAR_1_DAYS, YEAR_10000_DAYS = -719_162, 2_932_897


def civil(days: int) -> tuple[int, int, int]:
    """(astronomical year, month, day) of a day counted from 1970-01-01 (H. Hinnant's days_from_civil inverse)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _ymd(days: int) -> tuple[str, str]:
    """("YYYY-MM-DD", era suffix) as PostgreSQL writes the date: BC years counted from 1 BC = year 0."""
    year, month, day = civil(days)
    bc = year <= 0
    return f"{1 - year if bc else year:04d}-{month:02d}-{day:02d}", " BC" if bc else ""


def date_text(days: int) -> str:
    """A date as PostgreSQL prints it (DateStyle ISO)."""
    ymd, era = _ymd(days)
    return ymd + era


def time_text(micros: int) -> str:
    """A time of day (microseconds since midnight) as PostgreSQL prints it: HH:MM:SS[.ffffff, trailing zeros cut]."""
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + f".{fraction:06d}".rstrip("0") if fraction else text


def timestamp_text(micros: int, sep: str = " ", zone: str = "") -> str:
    """A timestamp (microseconds since 1970, UTC for a zoned one) as PostgreSQL prints it: ``sep`` between
    date and time (" " in a column, "T" inside jsonb), ``zone`` after the time ("+00" for timestamptz)."""
    days, rest = divmod(micros, DAY_MICROS)
    ymd, era = _ymd(days)
    return f"{ymd}{sep}{time_text(rest)}{zone}{era}"

