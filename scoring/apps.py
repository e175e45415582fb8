from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self):
        # Load the configured scorers at start-up, so a bad TRACESCORE_SCORERS
        # entry or a duplicate id fails now with a clear message, not mid-batch.
        from observability.extensions import register_ingest_listener, register_trace_filter
        from scoring import checks, signals  # noqa: F401 - registers the checks and receivers
        from scoring.filters import traces_scored_by
        from scoring.rules import note_ingested_traces
        from scoring.scorers import registry

        registry.load()
        register_trace_filter("scored_by", traces_scored_by)
        # Live scoring rules learn which traces got spans.
        register_ingest_listener(note_ingested_traces)
