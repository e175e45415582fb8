from django.db import models


class ScoreStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ScoreSource(models.TextChoices):
    BATCH = "batch", "Batch"
    API = "api", "API"
    LIVE = "live", "Live"


class ScopeType(models.TextChoices):
    TRACE = "trace", "Trace"
