"""Trace pages."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from observability.models import Trace


@require_GET
def trace_list(request: HttpRequest) -> HttpResponse:
    traces = Trace.objects.newest_first()[:50]
    return render(request, "observability/trace_list.html", {"traces": traces})


@require_GET
def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    trace = get_object_or_404(Trace, trace_id=trace_id)
    return render(
        request,
        "observability/trace_detail.html",
        {"trace": trace, "spans": trace.spans.in_order()},
    )
