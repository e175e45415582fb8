"""The API root: an index of the endpoints, for people browsing the API."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse


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
