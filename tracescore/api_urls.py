"""Every REST endpoint under /api/, gathered from the apps."""

from django.urls import include, path

from tracescore.api import api_root

urlpatterns = [
    path("", api_root, name="api-root"),
    path("", include("observability.api_urls")),
    path("", include("scoring.api_urls")),
]
