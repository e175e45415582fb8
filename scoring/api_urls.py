from django.urls import path

from scoring import api

urlpatterns = [
    path("trace-scorers/batch", api.BatchCreateView.as_view(), name="api-batch-create"),
    path(
        # Any text, so a malformed id gets the API's JSON 404 rather than Django's page.
        "trace-scorers/batch/<str:batch_id>",
        api.BatchDetailView.as_view(),
        name="api-batch-detail",
    ),
    path("traces/<str:trace_id>/scores", api.TraceScoresView.as_view(), name="api-trace-scores"),
    path("scorers", api.ScorerListView.as_view(), name="api-scorer-list"),
    path("scorers/<str:scorer_id>", api.ScorerDetailView.as_view(), name="api-scorer-detail"),
    path(
        "scorers/<str:scorer_id>/results",
        api.ScorerResultsView.as_view(),
        name="api-scorer-results",
    ),
]
