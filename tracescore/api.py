"""The API root (an index of the endpoints, for people browsing the API) and its error handler."""

import logging

from django.db import InterfaceError, OperationalError
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
    """DRF's handler, plus: a database that is down or past its timeouts answers 503 JSON.

    Clients (exporters most of all) retry a 503 with ``Retry-After``; a 500
    would tell them the request itself was at fault.
    """
    if isinstance(exc, (OperationalError, InterfaceError)):
        log.warning("Database unavailable: %s", exc)
        return Response({"error": DATABASE_UNAVAILABLE}, status=503, headers={"Retry-After": "5"})
    return drf_exception_handler(exc, context)
