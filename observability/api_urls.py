from django.urls import path

from observability import api

urlpatterns = [
    path("traces", api.TraceListView.as_view(), name="api-trace-list"),
]
