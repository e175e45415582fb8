"""A trace's spans in tree order, computed without recursion and paged.

A trace may hold 100,000 spans, or a parent chain thousands deep, so the tree
is never built from full span rows or walked recursively: ``read_tree`` loads
only each span's id and parent (in sibling order, by start), ``tree_order``
walks them with an explicit stack, and a page of full rows is then read by id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from django.db.models import Q, Subquery

from observability.models import Span, Trace


@dataclass(frozen=True)
class TreeOrder:
    """Span ids in tree order (parents before children, siblings by start) and their depths.

    ``earliest`` is the first span by start time: the one that shows the
    trace's stray logs when the root span has not arrived.
    """

    span_ids: list[str] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    earliest: str | None = None

    def __len__(self) -> int:
        return len(self.span_ids)

    @cached_property
    def positions(self) -> dict[str, int]:
        return {span_id: at for at, span_id in enumerate(self.span_ids)}

    def position(self, span_id: str | None) -> int | None:
        return self.positions.get(span_id) if span_id else None

    def page(self, offset: int, limit: int) -> list[tuple[str, int]]:
        """``(span_id, depth)`` of the spans from ``offset``, at most ``limit`` of them."""
        end = offset + limit
        return list(zip(self.span_ids[offset:end], self.depths[offset:end], strict=True))


def tree_order(rows: Iterable[tuple[str, str | None]]) -> TreeOrder:
    """Order ``(span_id, parent_span_id)`` pairs, given in sibling order, as a tree.

    A span whose parent is not in the trace (not arrived yet, or never sent)
    is shown as a root. Spans caught in a parent cycle, which no root leads
    to, are shown too: the first of them by start becomes a root. Depth is
    unbounded; the walk uses a stack, never Python recursion.
    """
    rows = list(rows)
    known = {span_id for span_id, _ in rows}
    children: dict[str | None, list[str]] = {}
    for span_id, parent in rows:
        key = parent if parent in known and parent != span_id else None
        children.setdefault(key, []).append(span_id)
    order: list[str] = []
    depths: list[int] = []
    seen: set[str] = set()

    def walk(stack: list[tuple[str, int]]) -> None:
        while stack:
            span_id, depth = stack.pop()
            if span_id in seen:
                continue
            seen.add(span_id)
            order.append(span_id)
            depths.append(depth)
            kids = children.get(span_id)
            if kids:
                stack.extend((kid, depth + 1) for kid in reversed(kids))

    walk([(root, 0) for root in reversed(children.get(None, []))])
    if len(order) < len(rows):
        for span_id, _ in rows:
            if span_id not in seen:
                walk([(span_id, 0)])
    return TreeOrder(order, depths, rows[0][0] if rows else None)


def read_tree(trace: Trace) -> TreeOrder:
    """The trace's tree order, from two columns of its spans (one query)."""
    rows = (
        Span.objects.filter(trace=trace)
        .order_by("started_at", "span_id")
        .values_list("span_id", "parent_span_id")
    )
    return tree_order(rows)


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
