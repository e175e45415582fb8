from django.urls import path

from scoring import api, mastra

urlpatterns = [
    path("trace-scorers/batch", api.BatchCreateView.as_view(), name="api-batch-create"),
    path("trace-scorers/batch/preview", api.BatchPreviewView.as_view(), name="api-batch-preview"),
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
]
