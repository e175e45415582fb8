"""Trace pages: the list with filters and selection, and one trace with its spans and scores.

Scores, scorers and rules belong to ``scoring``, which this app never imports:
the templates load ``scoring_tags`` for them (see observability/extensions.py
for the other hooks).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from observability.filters import TraceFilter
from observability.models import LogRecord, Span, Trace
from observability.pagination import InvalidCursor, TraceCursor, page_of
from observability.spantree import (
    SpanLine,
    TreeOrder,
    read_lines,
    read_spans,
    read_tree,
    stray_holder,
)

PAGE_SIZE = 50


@require_GET
def trace_list(request: HttpRequest) -> HttpResponse:
    filterset = TraceFilter(request.GET, queryset=Trace.objects.all())
    cursor_text = request.GET.get("cursor", "")
    try:
        cursor = TraceCursor.decode(cursor_text) if cursor_text else None
    except InvalidCursor:
        return HttpResponseBadRequest("This page link is broken: its cursor is not valid.")
    if filterset.is_valid():
        page = page_of(filterset.qs, cursor, PAGE_SIZE)
    else:
        page = page_of(Trace.objects.none(), None, PAGE_SIZE)
    context = {
        "filterset": filterset,
        "page": page,
        "traces": page.items,
        "next_cursor": page.next.encode() if page.next else "",
        "previous_cursor": page.previous.encode() if page.previous else "",
    }
    template = "observability/trace_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#table"
    return render(request, template, context)


# Spans shown per page of the waterfall; "Load more spans" fetches the next ones.
SPANS_PER_PAGE = 500
# Indentation stops here (in rem): a chain thousands deep stays on screen, and
# the row says its depth instead.
MAX_INDENT = 24


@dataclass
class SpanRow:
    """A span placed in the tree (depth) and on the timeline (offset and width, in %)."""

    span: SpanLine
    depth: int
    offset: float
    width: float

    @property
    def indent(self) -> int:
        return min(self.depth, MAX_INDENT)

    @property
    def deeper_than_shown(self) -> bool:
        return self.depth > MAX_INDENT


def waterfall(placed: list[tuple[SpanLine, int]], trace: Trace) -> list[SpanRow]:
    """Timeline bars for spans already in tree order, scaled to the whole trace's time range."""
    start = trace.started_at or (placed[0][0].started_at if placed else None)
    total_ms = max(trace.duration_ms or 0.0, 1.0)
    rows: list[SpanRow] = []
    for span, depth in placed:
        offset = (span.started_at - start).total_seconds() * 1000 / total_ms * 100 if start else 0
        width = (span.duration_ms or 0) / total_ms * 100
        offset = min(max(offset, 0.0), 100.0)
        rows.append(SpanRow(span, depth, offset, max(min(width, 100.0 - offset), 0.4)))
    return rows


def span_logs(trace: Trace, selected: Span | None, holder: str | None) -> list[LogRecord]:
    """The selected span's log records; the stray holder's panel also gets the trace's strays."""
    if selected is None:
        return []
    return list(
        LogRecord.objects.for_spans(
            trace.trace_id, [selected.span_id], with_strays=selected.span_id == holder
        )
    )


def span_panel(request: HttpRequest, trace: Trace, requested: str) -> HttpResponse:
    """The panel of one span (an htmx click in the waterfall): no tree needed."""
    holder = trace.root_span_id if trace.has_root else None
    spans = read_spans(trace, [requested, holder or ""], with_earliest=holder is None)
    by_id = {s.span_id: s for s in spans}
    holder = holder or (spans[0].span_id if spans else None)
    selected = by_id.get(requested) or by_id.get(holder)
    context = {"trace": trace, "selected": selected, "logs": span_logs(trace, selected, holder)}
    return render(request, "observability/trace_detail.html#span-panel", context)


def span_page_context(trace: Trace, tree: TreeOrder, offset: int) -> dict:
    """The waterfall rows of one page of spans, and the links to the pages around it."""
    page = tree.page(offset, SPANS_PER_PAGE)
    lines = read_lines(trace, [span_id for span_id, _ in page])
    rows = waterfall([(lines[i], depth) for i, depth in page if i in lines], trace)
    end = offset + len(page)
    return {
        "rows": rows,
        "span_total": len(tree),
        "span_first": offset + 1,
        "span_last": end,
        "next_offset": end if end < len(tree) else None,
        "next_last": min(end + SPANS_PER_PAGE, len(tree)),
        "previous_offset": previous_offset(offset, len(tree)),
    }


def previous_offset(offset: int, total: int) -> int | None:
    """Where the page before this one starts (past the end: the last page), or None."""
    if not offset:
        return None
    last_page = max(total - 1, 0) // SPANS_PER_PAGE * SPANS_PER_PAGE
    return max(min(offset - SPANS_PER_PAGE, last_page), 0)


def parse_offset(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ValueError(raw)
    return int(raw)


@require_GET
def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    trace = Trace.objects.filter(trace_id=trace_id.lower()).first()
    if trace is None:
        raise Http404(f"No trace with id {trace_id}.")
    template = "observability/trace_detail.html"
    part = request.GET.get("part")
    if request.htmx and part == "scores":
        return render(request, template + "#scores", {"trace": trace})
    requested = request.GET.get("span", "")
    if request.htmx and part != "spans" and "span" in request.GET:
        return span_panel(request, trace, requested)
    try:
        offset = parse_offset(request.GET.get("offset"))
    except ValueError:
        return HttpResponseBadRequest(
            "This page link is broken: offset must be a whole number of spans, 0 or more."
        )
    tree = read_tree(trace)
    if offset is None:
        # A link to a span opens the page of spans it is on.
        at = tree.position(requested)
        offset = at - at % SPANS_PER_PAGE if at is not None else 0
    if request.htmx and part == "spans":
        context = {"trace": trace, "selected_id": requested}
        context |= span_page_context(trace, tree, offset)
        return render(request, template + "#span-rows", context)
    holder = stray_holder(trace, tree.earliest)
    by_id = {s.span_id: s for s in read_spans(trace, [requested, holder or ""])}
    selected = by_id.get(requested) or by_id.get(holder)
    context = {
        "trace": trace,
        "selected": selected,
        "selected_id": selected.span_id if selected else "",
        "logs": span_logs(trace, selected, holder),
        **span_page_context(trace, tree, offset),
    }
    return render(request, template, context)
