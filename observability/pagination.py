"""Keyset (cursor) pagination of traces, newest first.

Traces are ordered by ``(-started_at, -trace_id)``: the trace id breaks ties
between traces that started in the same microsecond, so a cursor names one
exact place in the list and paging never loses or repeats a row, even while
new traces arrive. A page costs one indexed range scan however deep it is
(``trace_started_idx``), unlike OFFSET paging.

``page_of`` is plain Python for the HTML list; ``TraceCursorPagination`` is
the same thing for DRF views.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.utils.urls import replace_query_param

from observability.models import Trace
from tracescore.timebounds import MAX_YEAR, MIN_YEAR, OUT_OF_RANGE

ORDERING = ("-started_at", "-trace_id")
_TRACE_ID = re.compile(r"^[0-9a-zA-Z]{1,32}$")
_PAGE_SIZE = re.compile(r"^[0-9]{1,9}$")


class InvalidCursor(ValueError):
    """The cursor text was not made by ``TraceCursor.encode``."""


@dataclass(frozen=True)
class TraceCursor:
    """A place in the newest-first list: the page after it, or before it when ``reverse``."""

    started_at: datetime
    trace_id: str
    reverse: bool = False

    @classmethod
    def after(cls, trace: Trace) -> TraceCursor:
        return cls(trace.started_at, trace.trace_id)

    @classmethod
    def before(cls, trace: Trace) -> TraceCursor:
        return cls(trace.started_at, trace.trace_id, reverse=True)

    def encode(self) -> str:
        text = f"{'p' if self.reverse else 'n'}|{self.started_at.isoformat()}|{self.trace_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, encoded: str) -> TraceCursor:
        try:
            text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            direction, started, trace_id = text.split("|")
            started_at = _cursor_time(datetime.fromisoformat(started))
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as exc:
            raise InvalidCursor(encoded) from exc
        if (
            direction not in ("n", "p")
            or started_at.tzinfo is None
            or not _TRACE_ID.match(trace_id)
        ):
            raise InvalidCursor(encoded)
        return cls(started_at, trace_id, reverse=direction == "p")


def _cursor_time(value: datetime) -> datetime:
    """A cursor's time in UTC, within a year of the years a trace can start in.

    Span times are checked as written (``storable_datetime``) and cursors are
    written in UTC, where a span sent as 1900-01-01T00:00+05:00 is still in 1899.
    """
    if not MIN_YEAR - 1 <= value.year <= MAX_YEAR + 1:
        raise ValueError(OUT_OF_RANGE)
    return value.astimezone(UTC) if value.tzinfo is not None else value


@dataclass
class TracePage:
    items: list[Trace]
    next: TraceCursor | None
    previous: TraceCursor | None


def page_of(queryset: QuerySet, cursor: TraceCursor | None, size: int) -> TracePage:
    """One page of ``queryset`` (newest first) at ``cursor``; the first page when it is None."""
    queryset = queryset.filter(started_at__isnull=False)
    if cursor is None:
        rows = list(queryset.order_by(*ORDERING)[: size + 1])
        items = rows[:size]
        return TracePage(
            items, TraceCursor.after(items[-1]) if len(rows) > size else None, previous=None
        )
    at, trace_id = cursor.started_at, cursor.trace_id
    if not cursor.reverse:
        # started_at <= at bounds the index scan; the OR breaks the tie on trace_id.
        rows = list(
            queryset.filter(started_at__lte=at)
            .filter(Q(started_at__lt=at) | Q(trace_id__lt=trace_id))
            .order_by(*ORDERING)[: size + 1]
        )
        items = rows[:size]
        return TracePage(
            items,
            next=TraceCursor.after(items[-1]) if len(rows) > size else None,
            previous=TraceCursor.before(items[0]) if items else TraceCursor(at, trace_id, True),
        )
    rows = list(
        queryset.filter(started_at__gte=at)
        .filter(Q(started_at__gt=at) | Q(trace_id__gt=trace_id))
        .order_by("started_at", "trace_id")[: size + 1]
    )
    items = list(reversed(rows[:size]))
    return TracePage(
        items,
        next=TraceCursor.after(items[-1]) if items else TraceCursor(at, trace_id),
        previous=TraceCursor.before(items[0]) if len(rows) > size else None,
    )


class TraceCursorPagination(CursorPagination):
    """DRF cursor pagination over ``page_of``: ``?cursor=…&pageSize=…`` (default 50, at most 200).

    DRF's own CursorPagination positions on ``started_at`` alone and skips
    ties with an offset, which repeats or loses rows when traces share a start
    time and new ones arrive between pages; this one positions on the full key.
    """

    page_size = 50
    page_size_query_param = "pageSize"
    page_size_query_description = (
        "Traces per page, from 1 (default 50); a number above 200 gives 200."
    )
    max_page_size = 200
    ordering = ORDERING

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.page_size = self.get_page_size(request)
        page = page_of(queryset, self.decode_cursor(request), self.page_size)
        self._next, self._previous = page.next, page.previous
        self.has_next, self.has_previous = page.next is not None, page.previous is not None
        self.display_page_controls = self.has_next or self.has_previous
        self.page = page.items
        return page.items

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # Digits only: int() would also take "", " 5", "+5" and "1_0".
        size = int(raw) if _PAGE_SIZE.match(raw) else 0
        if size < 1:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"Enter a whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                # Larger sizes are taken and capped, so no maximum here.
                parameter["schema"].update(minimum=1, maximum=999_999_999)
        return parameters

    def decode_cursor(self, request) -> TraceCursor | None:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:
            return None
        try:
            return TraceCursor.decode(raw)
        except InvalidCursor:
            raise ValidationError(
                {self.cursor_query_param: ["This cursor is not valid; start from the first page."]}
            ) from None

    def _link(self, cursor: TraceCursor | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(self.base_url, self.cursor_query_param, cursor.encode())

    def get_next_link(self) -> str | None:
        return self._link(self._next)

    def get_previous_link(self) -> str | None:
        return self._link(self._previous)
