"""Datetimes from users' input that every database accepts.

Python parses offsets up to ±23:59 and dates up to 9999-12-31; PostgreSQL
refuses offsets past ±15:59, and a day added to 9999-12-31 overflows. Query
parameters and cursors go through ``storable_datetime`` first, so such input
is a 400 with a message, never a server error.
"""

from __future__ import annotations

import datetime as dt

MIN_YEAR, MAX_YEAR = 1900, 9000
OUT_OF_RANGE = f"Enter a date between the years {MIN_YEAR} and {MAX_YEAR}."


def storable_datetime(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; ValueError if it lies outside the years the app accepts."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(OUT_OF_RANGE)
    return value


def storable_date(value: dt.date) -> dt.date:
    """``value``; ValueError if it lies outside the years the app accepts."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(OUT_OF_RANGE)
    return value
