"""Trace pages: the list with filters and selection, and one trace with its spans and scores."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from observability.filters import TraceFilter
from observability.models import LogRecord, Span, Trace
from observability.pagination import InvalidCursor, TraceCursor, page_of
from scoring.models import Score
from scoring.scorers import registry

PAGE_SIZE = 50


def latest_scores(trace_ids: list[str]) -> dict[str, list[Score]]:
    """The newest score of each scorer for each trace, in one query."""
    latest: dict[str, dict[str, Score]] = {}
    scores = (
        Score.objects.filter(trace_id__in=trace_ids)
        .only("trace_id", "scorer_id", "scorer_name", "score", "status", "reason", "error")
        .order_by("trace_id", "scorer_id", "-created_at", "-id")
    )
    for score in scores:
        latest.setdefault(score.trace_id, {}).setdefault(score.scorer_id, score)
    return {trace_id: list(by_scorer.values()) for trace_id, by_scorer in latest.items()}


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
    scores = latest_scores([t.trace_id for t in page.items])
    for trace in page.items:
        trace.latest_scores = scores.get(trace.trace_id, [])
    context = {
        "filterset": filterset,
        "page": page,
        "traces": page.items,
        "next_cursor": page.next.encode() if page.next else "",
        "previous_cursor": page.previous.encode() if page.previous else "",
        "scorers": registry.all(),
    }
    template = "observability/trace_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#table"
    return render(request, template, context)


@dataclass
class SpanRow:
    """A span placed in the tree (depth) and on the timeline (offset and width, in %)."""

    span: Span
    depth: int
    offset: float
    width: float


def span_tree(spans: list[Span], trace: Trace) -> list[SpanRow]:
    """Spans in tree order (parents before children, siblings by start) with timeline bars."""
    by_parent: dict[str | None, list[Span]] = {}
    ids = {s.span_id for s in spans}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        by_parent.setdefault(parent, []).append(span)
    start = trace.started_at or (spans[0].started_at if spans else None)
    total_ms = max(trace.duration_ms or 0.0, 1.0)
    rows: list[SpanRow] = []

    def visit(span: Span, depth: int) -> None:
        offset = (span.started_at - start).total_seconds() * 1000 / total_ms * 100 if start else 0
        width = (span.duration_ms or 0) / total_ms * 100
        offset = min(max(offset, 0.0), 100.0)
        rows.append(SpanRow(span, depth, offset, max(min(width, 100.0 - offset), 0.4)))
        for child in by_parent.get(span.span_id, []):
            visit(child, depth + 1)

    for root in by_parent.get(None, []):
        visit(root, 0)
    return rows


def scores_context(trace: Trace) -> dict:
    """The trace's scores, newest first, and whether any is still being worked on."""
    scores = list(trace.scores.newest_first())
    for score in scores:
        try:
            score.higher_is_better = registry.get(score.scorer_id).higher_is_better
        except registry.UnknownScorer:
            score.higher_is_better = True
    return {"scores": scores, "scores_pending": any(s.status == "pending" for s in scores)}


def span_logs(trace: Trace, spans: list[Span], selected: Span | None) -> list[LogRecord]:
    """The selected span's log records; the page's first span also gets the trace's strays.

    Strays are logs naming no span, or a span that is not in the trace: they
    show on the span a visitor sees first (the root), so no log is hidden.
    """
    if selected is None:
        return []
    first = next((s for s in spans if s.span_id == trace.root_span_id), spans[0])
    return list(
        LogRecord.objects.for_span_panel(
            trace.trace_id, selected.span_id, with_strays=selected is first
        )
    )


@require_GET
def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    trace = Trace.objects.filter(trace_id=trace_id.lower()).first()
    if trace is None:
        raise Http404(f"No trace with id {trace_id}.")
    template = "observability/trace_detail.html"
    if request.htmx and request.GET.get("part") == "scores":
        return render(request, template + "#scores", {"trace": trace, **scores_context(trace)})
    spans = list(trace.spans.in_order())
    selected_id = request.GET.get("span") or trace.root_span_id
    selected = next((s for s in spans if s.span_id == selected_id), spans[0] if spans else None)
    context = {"trace": trace, "selected": selected, "logs": span_logs(trace, spans, selected)}
    if request.htmx and "span" in request.GET:
        return render(request, template + "#span-panel", context)
    context |= {"rows": span_tree(spans, trace), **scores_context(trace)}
    return render(request, template, context)
