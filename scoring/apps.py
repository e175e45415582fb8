from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self):
        # Load the configured scorers at start-up, so a bad TRACESCORE_SCORERS
        # entry or a duplicate id fails now with a clear message, not mid-batch.
        from scoring import signals  # noqa: F401 - connects the receivers
        from scoring.scorers import registry

        registry.load()
