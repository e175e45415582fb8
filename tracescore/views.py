"""Project-wide views that belong to no app."""

import threading

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer


def database_answers(timeout: float) -> bool:
    """Whether the database answers ``SELECT 1`` within ``timeout`` seconds.

    The probe runs in a thread with a connection of its own, so a database that
    accepts connections but never answers costs the caller ``timeout``, not a
    hung server worker.
    """
    answered = threading.Event()

    def probe():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            answered.set()
        except Exception:
            pass
        finally:
            connection.close()

    threading.Thread(target=probe, name="healthz-probe", daemon=True).start()
    return answered.wait(timeout)


@require_GET
@never_cache
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers in time, 503 when it does not; reveals nothing else."""
    if not database_answers(settings.DATABASE_CONNECT_TIMEOUT or 5):
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


def home(request: HttpRequest):
    return redirect("observability:trace-list")


class ApiSchemaView(SpectacularAPIView):
    """The OpenAPI schema (YAML, or JSON when asked); its errors are JSON, like the whole API."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


# The split view serves its start-up script as a file (?script), which our CSP needs.
_swagger_ui = SpectacularSwaggerSplitView.as_view(
    url_name="api-schema", template_name="api_docs.html"
)


@login_not_required
def api_docs(request: HttpRequest):
    """Swagger UI for a signed-in user or a token holder; anyone else is sent to log in.

    The view itself requires an authenticated caller (``SERVE_PERMISSIONS``),
    so a wrong token gets 401 rather than the page.
    """
    if not request.user.is_authenticated and "HTTP_AUTHORIZATION" not in request.META:
        return redirect_to_login(request.get_full_path())
    return _swagger_ui(request)
