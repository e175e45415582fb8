"""Hooks through which other apps add to the trace pages, so observability never imports them.

``scoring`` depends on ``observability``, not the reverse. Where the trace list
needs something only another app knows (which traces a scorer scored), that
app registers a function here when it is ready, and observability calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db.models import QuerySet

log = logging.getLogger(__name__)

TraceFilter = Callable[[QuerySet, str], QuerySet]

_trace_filters: dict[str, TraceFilter] = {}


def register_trace_filter(name: str, apply: TraceFilter) -> None:
    """Make ``apply(traces, value)`` the filter behind the trace list's ``name`` parameter."""
    _trace_filters[name] = apply


def apply_trace_filter(name: str, traces: QuerySet, value: str) -> QuerySet:
    """Apply the registered filter ``name``; with none registered, nothing matches."""
    apply = _trace_filters.get(name)
    return apply(traces, value) if apply else traces.none()


IngestListener = Callable[[list[str]], None]

_ingest_listeners: list[IngestListener] = []


def register_ingest_listener(listener: IngestListener) -> None:
    """Call ``listener(trace_ids)`` after every committed span ingest, with the traces it touched.

    A listener runs on the ingest path: it must cost a fixed, small number of
    queries per export and never raise (an error is logged, the export stands).
    """
    if listener not in _ingest_listeners:
        _ingest_listeners.append(listener)


def notify_ingest(trace_ids: list[str]) -> None:
    """Tell every registered listener which traces just got spans."""
    for listener in list(_ingest_listeners):
        try:
            listener(trace_ids)
        except Exception:
            log.exception("Ingest listener %r failed", listener)
