"""Ingest endpoints: OTLP/HTTP at the path every exporter defaults to, and the JSON batch API."""

from django.urls import path, re_path

from observability import ingest_views

urlpatterns = [
    path("v1/traces", ingest_views.otlp_traces, name="otlp-traces"),
    path("v1/logs", ingest_views.otlp_logs_export, name="otlp-logs"),
    # Every other /v1/ path gets an OTLP status body, never an HTML page.
    re_path(r"^v1(?P<path>/.*)?$", ingest_views.otlp_unknown, name="otlp-unknown"),
    path("api/spans", ingest_views.span_batch, name="api-span-ingest"),
]
