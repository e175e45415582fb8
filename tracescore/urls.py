"""Top-level routes: pages, the REST API, OTLP ingest, admin and health."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from tracescore import views

admin.site.site_header = "tracescore admin"
admin.site.site_title = "tracescore"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", views.ApiSchemaView.as_view(), name="api-schema"),
    path("api/docs/", views.api_docs, name="api-docs"),
    path("", include("observability.ingest_urls")),
    path("api/", include("tracescore.api_urls")),
    path("", include("observability.urls")),
    path("", include("scoring.urls")),
]

# Under /api/ these answer JSON; elsewhere Django's pages (templates/404.html).
handler400 = "tracescore.api.bad_request"
handler404 = "tracescore.api.page_not_found"
handler500 = "tracescore.api.server_error"
