from django.db import models


class ScoreStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    # The scorer does not apply to the scored span (or found nothing to judge):
    # never counted as a failure.
    SKIPPED = "skipped", "Skipped"


class ScoreSource(models.TextChoices):
    BATCH = "batch", "Batch"
    API = "api", "API"
    LIVE = "live", "Live"


class ScopeType(models.TextChoices):
    TRACE = "trace", "Trace"
    SPAN = "span", "Span"
