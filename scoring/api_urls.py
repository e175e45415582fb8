from django.urls import path

from scoring import api

urlpatterns = [
    path("scorers", api.ScorerListView.as_view(), name="api-scorer-list"),
]
