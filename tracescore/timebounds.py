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
# The same years as a pattern for ISO 8601 dates, for the API schema.
YEAR_PATTERN = r"^(19|[2-8][0-9]|9000-)"


def iso_schema(*formats: str, description: str) -> dict:
    """The OpenAPI schema of a query parameter that takes ISO dates in ``formats``."""
    choices = [{"type": "string", "format": f, "pattern": YEAR_PATTERN} for f in formats]
    schema = choices[0] if len(choices) == 1 else {"anyOf": choices}
    return {**schema, "description": description}


def storable_datetime(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; ValueError if its year, as written, lies outside the years the app accepts.

    The year is checked before the conversion, so the bounds are the ones the
    API schema states (``YEAR_PATTERN``): 1900-01-01T00:00+05:00 is accepted
    although it is still 1899 in UTC, which every database stores.
    """
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(OUT_OF_RANGE)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value


def storable_date(value: dt.date) -> dt.date:
    """``value``; ValueError if it lies outside the years the app accepts."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(OUT_OF_RANGE)
    return value
