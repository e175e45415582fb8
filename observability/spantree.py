"""A trace's spans in tree order, computed without recursion and paged.

A trace may hold 100,000 spans, or a parent chain thousands deep, so the tree
is never built from full span rows or walked recursively: ``read_tree`` loads
only each span's id and parent (in sibling order, by start), ``tree_order``
walks them with an explicit stack, and a page of full rows is then read by id.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache

from django.db import connection
from django.db.models import F, Q, Subquery
from django.db.models.functions import Collate

from observability.choices import SpanType
from observability.models import Span, Trace

ID_WIDTH = 16  # span ids are 16 hex characters; shorter ones are padded in the tree
# Trees of at least this many spans are kept between requests (see read_tree).
CACHE_FROM_SPANS = 5_000


class TreeOrder:
    """Span ids in tree order (parents before children, siblings by start) and their depths.

    Compact, so a huge trace's tree can be kept between requests: the ids are
    one string of fixed-width slots, the depths an array of integers (about
    20 bytes a span). ``earliest`` is the first span by start time: the one
    that shows the trace's stray logs when the root span has not arrived.
    """

    def __init__(self, span_ids: list[str], depths: list[int], earliest: str | None):
        joined = "".join(span_ids)
        if len(joined) != ID_WIDTH * len(span_ids):
            joined = "".join(span_id.ljust(ID_WIDTH) for span_id in span_ids)
        self._ids = joined
        self._depths = array("I", depths)
        self.earliest = earliest

    def __len__(self) -> int:
        return len(self._depths)

    @property
    def span_ids(self) -> list[str]:
        return self._slots(0, len(self))

    @property
    def depths(self) -> list[int]:
        return self._depths.tolist()

    def _slots(self, start: int, end: int) -> list[str]:
        ids = self._ids
        return [
            ids[at : at + ID_WIDTH].rstrip()
            for at in range(start * ID_WIDTH, end * ID_WIDTH, ID_WIDTH)
        ]

    def position(self, span_id: str | None) -> int | None:
        """Where ``span_id`` is in tree order, or None when it is not in the tree."""
        if not span_id or len(span_id) > ID_WIDTH:
            return None
        needle = span_id.ljust(ID_WIDTH)
        at = self._ids.find(needle)
        while at != -1 and at % ID_WIDTH:  # a match straddling two ids
            at = self._ids.find(needle, at + 1)
        return None if at == -1 else at // ID_WIDTH

    def page(self, offset: int, limit: int) -> list[tuple[str, int]]:
        """``(span_id, depth)`` of the spans from ``offset``, at most ``limit`` of them."""
        end = min(offset + limit, len(self))
        if offset >= end:
            return []
        return list(zip(self._slots(offset, end), self._depths[offset:end], strict=True))


def tree_order(rows: Iterable[tuple[str, str | None]]) -> TreeOrder:
    """Order ``(span_id, parent_span_id)`` pairs, given in sibling order, as a tree.

    A span whose parent is not in the trace (not arrived yet, or never sent)
    is shown as a root. Spans caught in a parent cycle, which no root leads
    to, are shown too: the first of them by start becomes a root. Depth is
    unbounded: the walk keeps a stack of sibling iterators, never recursing.
    """
    rows = list(rows)
    known = {span_id for span_id, _ in rows}
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for span_id, parent in rows:
        if parent in known and parent != span_id:
            children.setdefault(parent, []).append(span_id)
        else:
            roots.append(span_id)
    order: list[str] = []
    depths: list[int] = []
    seen: set[str] = set()

    def walk(level: list[str]) -> None:
        stack = [iter(level)]
        while stack:
            for span_id in stack[-1]:
                if span_id in seen:
                    continue
                seen.add(span_id)
                order.append(span_id)
                depths.append(len(stack) - 1)
                kids = children.get(span_id)
                if kids:
                    stack.append(iter(kids))
                    break
            else:
                stack.pop()

    walk(roots)
    if len(order) < len(rows):
        walk([span_id for span_id, _ in rows if span_id not in seen])
    return TreeOrder(order, depths, rows[0][0] if rows else None)


def read_tree(trace: Trace) -> TreeOrder:
    """The trace's tree order, from two columns of its spans (one query).

    A big tree is computed once per process and kept (a few, least recently
    used first out), so paging through a huge trace does not read and walk
    100,000 ids for every page. It is keyed on the trace's span count and
    last update, which every stored span changes, so it is never stale.
    """
    if trace.span_count >= CACHE_FROM_SPANS:
        return _kept_tree(trace.trace_id, trace.span_count, trace.updated_at)
    return tree_order(_id_rows(trace.trace_id))


@lru_cache(maxsize=8)
def _kept_tree(trace_id: str, span_count: int, updated_at: datetime) -> TreeOrder:
    return tree_order(_id_rows(trace_id))


def _id_rows(trace_id: str) -> list[tuple[str, str | None]]:
    """Every span's (id, parent), in sibling order: by start, then id."""
    # Ids are hex: byte order is their order, and much cheaper to sort by than
    # PostgreSQL's locale-aware collation.
    by_id = Collate(F("span_id"), "C") if connection.vendor == "postgresql" else F("span_id")
    rows = (
        Span.objects.filter(trace_id=trace_id)
        .order_by("started_at", by_id)
        .values_list("span_id", "parent_span_id")
    )
    # A plain cursor: Django's row iteration costs as much again on 100,000 rows.
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


SPAN_TYPE_LABELS = dict(SpanType.choices)


@dataclass(frozen=True, slots=True)
class SpanLine:
    """What a waterfall row shows of a span: no input, output or attributes to decode."""

    span_id: str
    name: str
    span_type: str
    status: str
    started_at: datetime
    duration_ms: float | None

    def get_span_type_display(self) -> str:
        return SPAN_TYPE_LABELS.get(self.span_type, self.span_type)


def read_lines(trace: Trace, span_ids: list[str]) -> dict[str, SpanLine]:
    """The waterfall rows of these spans of ``trace``, by id (one query)."""
    rows = Span.objects.filter(trace=trace, span_id__in=span_ids).values_list(
        *(f.name for f in fields(SpanLine))
    )
    return {row[0]: SpanLine(*row) for row in rows}


def read_spans(trace: Trace, span_ids: Iterable[str], *, with_earliest: bool = False) -> list[Span]:
    """Full rows of these spans of ``trace``, in start order (one query).

    ``with_earliest`` adds the trace's first span by start, which then comes
    first: the panel needs it when the root has not arrived, and has no tree.
    """
    condition = Q(span_id__in=list(span_ids))
    if with_earliest:
        first = Span.objects.filter(trace=trace).order_by("started_at", "span_id")
        condition |= Q(pk=Subquery(first.values("pk")[:1]))
    return list(
        Span.objects.filter(trace=trace).filter(condition).order_by("started_at", "span_id")
    )


def stray_holder(trace: Trace, earliest: str | None) -> str | None:
    """The span whose panel also shows the trace's stray logs: the root, else the earliest span.

    Strays are logs naming no span, or a span that is not in the trace: they
    show on the span a visitor sees first, so no log is hidden.
    """
    return trace.root_span_id if trace.has_root and trace.root_span_id else earliest
