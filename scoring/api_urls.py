from django.urls import path

from scoring import api, api_rules, mastra

urlpatterns = [
    path("trace-scorers/batch", api.BatchCreateView.as_view(), name="api-batch-create"),
    path("trace-scorers/batch/preview", api.BatchPreviewView.as_view(), name="api-batch-preview"),
    path(
        "trace-scorers/batch/by-filter",
        api_rules.FilteredBatchView.as_view(),
        name="api-batch-by-filter",
    ),
    path(
        "trace-scorers/batch/<str:batch_id>/retry",
        api_rules.BatchRetryView.as_view(),
        name="api-batch-retry",
    ),
    path(
        # Any text, so a malformed id gets the API's JSON 404 rather than Django's page.
        "trace-scorers/batch/<str:batch_id>",
        api.BatchDetailView.as_view(),
        name="api-batch-detail",
    ),
    path("traces/<str:trace_id>/scores", api.TraceScoresView.as_view(), name="api-trace-scores"),
    path(
        "observability/traces/score",
        mastra.ScoreTracesView.as_view(),
        name="api-mastra-score-traces",
    ),
    path(
        "observability/traces/<str:trace_id>/<str:span_id>/scores",
        mastra.SpanScoresView.as_view(),
        name="api-mastra-span-scores",
    ),
    path("scorers", api.ScorerListView.as_view(), name="api-scorer-list"),
    path("scorers/<str:scorer_id>", api.ScorerDetailView.as_view(), name="api-scorer-detail"),
    path(
        "scorers/<str:scorer_id>/results",
        api.ScorerResultsView.as_view(),
        name="api-scorer-results",
    ),
    path("scoring-rules", api_rules.RuleListView.as_view(), name="api-rule-list"),
    path("scoring-rules/<str:rule_id>", api_rules.RuleDetailView.as_view(), name="api-rule-detail"),
    path(
        "scoring-rules/<str:rule_id>/audit",
        api_rules.RuleAuditView.as_view(),
        name="api-rule-audit",
    ),
    path(
        "scoring-rules/<str:rule_id>/backfill",
        api_rules.RuleBackfillView.as_view(),
        name="api-rule-backfill",
    ),
    path(
        "scoring-rules/<str:rule_id>/retry",
        api_rules.RuleRetryView.as_view(),
        name="api-rule-retry",
    ),
]
