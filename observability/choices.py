from django.db import models


class SpanType(models.TextChoices):
    AGENT_RUN = "agent_run", "Agent run"
    WORKFLOW_RUN = "workflow_run", "Workflow run"
    WORKFLOW_STEP = "workflow_step", "Workflow step"
    LLM_GENERATION = "llm_generation", "LLM generation"
    TOOL_CALL = "tool_call", "Tool call"
    RETRIEVAL = "retrieval", "Retrieval"
    EMBEDDING = "embedding", "Embedding"
    GENERIC = "generic", "Generic"


class SpanStatus(models.TextChoices):
    UNSET = "unset", "Unset"
    OK = "ok", "OK"
    ERROR = "error", "Error"
