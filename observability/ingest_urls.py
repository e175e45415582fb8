"""Ingest endpoints: OTLP/HTTP at the path every exporter defaults to, and the JSON batch API."""

urlpatterns: list = []
