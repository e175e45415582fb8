from django.urls import path

from observability import api

urlpatterns = [
    path("traces", api.TraceListView.as_view(), name="api-trace-list"),
    path("traces/<str:trace_id>", api.TraceDetailView.as_view(), name="api-trace-detail"),
]
