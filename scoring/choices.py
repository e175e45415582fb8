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
    # Made by a scoring rule: live on a finished trace, or by the rule's backfill.
    RULE = "rule", "Rule"


class ScopeType(models.TextChoices):
    TRACE = "trace", "Trace"
    SPAN = "span", "Span"


class RuleOutcomeKind(models.TextChoices):
    """What a scoring rule did with one trace it considered."""

    PENDING = "pending", "Pending"
    SCORED = "scored", "Scored"
    SAMPLED_OUT = "sampled_out", "Sampled out"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
