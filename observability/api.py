"""REST API for reading traces: ``GET /api/traces`` and ``GET /api/traces/<traceId>``."""

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics
from rest_framework.exceptions import NotFound

from observability.filters import TraceFilter
from observability.models import LogRecord, Span, Trace
from observability.pagination import TraceCursorPagination
from observability.serializers import TraceDetailSerializer, TraceErrorSerializer, TraceSerializer

UNAUTHORIZED = OpenApiResponse(
    TraceErrorSerializer,
    description="No valid credentials: send 'Authorization: Token <token>' or sign in.",
)
BAD_QUERY = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="A filter, cursor or pageSize is invalid: each bad parameter with its messages.",
    examples=[
        OpenApiExample(
            "Unknown status",
            value={"status": ["Select a valid choice. done is not one of the available choices."]},
        )
    ],
)
NOT_FOUND = OpenApiResponse(TraceErrorSerializer, description="No trace with this id.")
BAD_PATH = OpenApiResponse(
    TraceErrorSerializer, description="The URL holds a NUL character, which no id has."
)
TRACE_ID = OpenApiParameter(
    "trace_id",
    {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
    OpenApiParameter.PATH,
    description="The trace id: 32 hex characters, as OpenTelemetry writes it.",
)


@extend_schema(
    summary="List traces, newest first",
    description=(
        "Traces ordered by start time, newest first, with cursor pagination: follow `next` "
        "and `previous`. Filters combine with AND."
    ),
    responses={200: TraceSerializer(many=True), 400: BAD_QUERY, 401: UNAUTHORIZED},
)
class TraceListView(generics.ListAPIView):
    serializer_class = TraceSerializer
    filterset_class = TraceFilter
    pagination_class = TraceCursorPagination
    queryset = Trace.objects.all()


@extend_schema(
    summary="One trace with all its spans and log records",
    parameters=[TRACE_ID],
    responses={200: TraceDetailSerializer, 400: BAD_PATH, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
class TraceDetailView(generics.RetrieveAPIView):
    serializer_class = TraceDetailSerializer
    filter_backends = []

    def get_object(self) -> Trace:
        trace_id = self.kwargs["trace_id"]
        trace = (
            Trace.objects.filter(trace_id=trace_id.lower())
            .prefetch_related(
                Prefetch("spans", queryset=Span.objects.in_order()),
                Prefetch("logs", queryset=LogRecord.objects.in_order()),
            )
            .first()
        )
        if trace is None:
            raise NotFound(f"No trace with id {trace_id}.")
        return trace
