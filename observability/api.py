"""REST API for reading traces: ``GET /api/traces`` and ``GET /api/traces/<traceId>``."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from observability.filters import TraceFilter
from observability.models import LogRecord, Trace
from observability.pagination import TraceCursorPagination
from observability.serializers import TraceDetailSerializer, TraceErrorSerializer, TraceSerializer
from observability.spantree import read_spans, read_tree

# Spans per page of GET /api/traces/<traceId>: the most, and the default.
MAX_SPAN_PAGE_SIZE = 1000
SPAN_PAGE_SIZE = 500

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
BAD_SPAN_PAGE = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description=(
        "offset or pageSize is invalid (each bad parameter with its messages), or the URL "
        "holds a NUL character."
    ),
    examples=[
        OpenApiExample(
            "Page too large",
            value={"pageSize": ["Ensure this value is less than or equal to 1000."]},
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


class SpanPageQuerySerializer(serializers.Serializer):
    offset = serializers.IntegerField(
        min_value=0,
        max_value=2**31 - 1,
        default=0,
        help_text="How many spans, in tree order, to skip (follow `next` instead of counting).",
    )
    pageSize = serializers.IntegerField(  # noqa: N815 - API is camelCase
        min_value=1,
        max_value=MAX_SPAN_PAGE_SIZE,
        default=SPAN_PAGE_SIZE,
        help_text=f"Spans per page, 1 to {MAX_SPAN_PAGE_SIZE} (default {SPAN_PAGE_SIZE}).",
    )


@extend_schema(
    summary="One trace with a page of its spans and their log records",
    description=(
        "The trace's summary and its spans in tree order (parents before children, siblings "
        "by start time), each with its `depth` in the tree, one page at a time: follow `next` "
        "until it is null. `logs` holds the log records of the page's spans; the first page "
        "also holds the trace's logs that name no span, or a span that is not in the trace."
    ),
    parameters=[TRACE_ID, SpanPageQuerySerializer],
    responses={
        200: TraceDetailSerializer,
        400: BAD_SPAN_PAGE,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
class TraceDetailView(generics.RetrieveAPIView):
    serializer_class = TraceDetailSerializer
    filter_backends = []

    def get_object(self) -> Trace:
        trace_id = self.kwargs["trace_id"]
        trace = Trace.objects.filter(trace_id=trace_id.lower()).first()
        if trace is None:
            raise NotFound(f"No trace with id {trace_id}.")
        return trace

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        # A plain dict, so an empty value is an error rather than the default.
        query = SpanPageQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        offset, size = query.validated_data["offset"], query.validated_data["pageSize"]
        trace = self.get_object()
        tree = read_tree(trace)
        page = tree.page(offset, size)
        by_id = {s.span_id: s for s in read_spans(trace, [span_id for span_id, _ in page])}
        trace.page_spans = []
        for span_id, depth in page:
            if span_id in by_id:  # else deleted since the tree was read
                by_id[span_id].depth = depth
                trace.page_spans.append(by_id[span_id])
        trace.page_logs = LogRecord.objects.for_spans(
            trace.trace_id, list(by_id), with_strays=offset == 0
        )
        end = offset + len(page)
        trace.next_page = (
            replace_query_param(request.build_absolute_uri(), "offset", end)
            if end < len(tree)
            else None
        )
        return Response(self.get_serializer(trace).data)
