"""Ingest endpoints: OTLP/HTTP at the path every exporter defaults to, and the JSON batch API."""

from django.urls import path

from observability import ingest_views

urlpatterns = [
    path("v1/traces", ingest_views.otlp_traces, name="otlp-traces"),
    path("api/spans", ingest_views.span_batch, name="api-span-ingest"),
]
