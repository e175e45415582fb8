"""The API root (an index of the endpoints, for people browsing the API) and its error handlers."""

from __future__ import annotations

import logging

from django.core.exceptions import SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)


@extend_schema(exclude=True)
@api_view(["GET"])
def api_root(request: Request) -> Response:
    def url(name: str) -> str:
        return reverse(name, request=request)

    return Response(
        {
            "traces": url("api-trace-list"),
            "scorers": url("api-scorer-list"),
            "schema": url("api-schema"),
            "docs": url("api-docs"),
        }
    )


DATABASE_UNAVAILABLE = "The database is unavailable or busy; nothing was changed. Retry shortly."


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus two answers in JSON that Django would give as HTML pages.

    - A database that is down or past its timeouts: 503 with ``Retry-After``.
      Clients (exporters most of all) retry a 503; a 500 would tell them the
      request itself was at fault.
    - A request Django refuses while reading it (more than
      ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` form fields or query parameters, a
      body past ``DATA_UPLOAD_MAX_MEMORY_SIZE``): 400 with the reason.
    """
    if isinstance(exc, (OperationalError, InterfaceError)):
        log.warning("Database unavailable: %s", exc)
        return Response({"error": DATABASE_UNAVAILABLE}, status=503, headers={"Retry-After": "5"})
    if isinstance(exc, SuspiciousOperation):
        log.warning("Refused request: %s", exc)
        return Response({"detail": refused_request_message(exc)}, status=400)
    return drf_exception_handler(exc, context)


def refused_request_message(exc: SuspiciousOperation) -> str:
    name = type(exc).__name__
    if name in ("TooManyFieldsSent", "TooManyFilesSent"):
        return "The request has too many form fields or query parameters: send the data as JSON."
    if name == "RequestDataTooBig":
        return "The request body is too large."
    return "The request was refused as malformed."


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# Django's error views (handler400/404/500 in the root URLconf), in JSON under /api/:
# an API client never gets an HTML page, for a path no route matches (/api/nope,
# a batch id that is not a UUID) or a request refused before any view ran.


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        message = (
            refused_request_message(exception)
            if isinstance(exception, SuspiciousOperation)
            else "Bad request."
        )
        return JsonResponse({"detail": message}, status=400)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_path(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)
