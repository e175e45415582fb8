"""Hooks through which other apps add to the trace pages, so observability never imports them.

``scoring`` depends on ``observability``, not the reverse. Where the trace list
needs something only another app knows (which traces a scorer scored), that
app registers a function here when it is ready, and observability calls it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet

TraceFilter = Callable[[QuerySet, str], QuerySet]

_trace_filters: dict[str, TraceFilter] = {}


def register_trace_filter(name: str, apply: TraceFilter) -> None:
    """Make ``apply(traces, value)`` the filter behind the trace list's ``name`` parameter."""
    _trace_filters[name] = apply


def apply_trace_filter(name: str, traces: QuerySet, value: str) -> QuerySet:
    """Apply the registered filter ``name``; with none registered, nothing matches."""
    apply = _trace_filters.get(name)
    return apply(traces, value) if apply else traces.none()
