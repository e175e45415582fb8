"""REST API for scorers, scoring batches and scores."""

from __future__ import annotations

import uuid

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from observability.models import Trace
from scoring import services
from scoring.filters import ScoreFilter
from scoring.models import Score, ScoringBatch
from scoring.scorers import registry
from scoring.serializers import (
    BatchRequestSerializer,
    BatchSerializer,
    BatchStartedSerializer,
    ScorerSerializer,
    ScoreSerializer,
)
from scoring.stats import EMPTY, ScorerRow, scorer_stats
from tracescore.parsers import BoundedJSONParser

ERROR = OpenApiResponse(
    response={"type": "object", "properties": {"detail": {"type": "string"}}},
    description="What is wrong, for a person.",
)
UNAUTHORIZED = OpenApiResponse(ERROR.response, description="No valid session or token.")
BAD_PATH = OpenApiResponse(
    ERROR.response, description="The URL holds a NUL character, which no id has."
)
BAD_PAGE = OpenApiResponse(
    ERROR.response, description="`page` is not a whole number from 1, or the URL holds a NUL."
)
TRACE_ID = OpenApiParameter(
    "trace_id",
    {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
    OpenApiParameter.PATH,
    description="The trace id: 32 hex characters.",
)
SCORER_ID = OpenApiParameter(
    "scorer_id",
    {"type": "string", "pattern": "^[^\\u0000]+$"},
    OpenApiParameter.PATH,
    description="A scorer id, such as `completeness`.",
)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _scorer_or_404(scorer_id: str):
    try:
        return registry.get(scorer_id)
    except registry.UnknownScorer:
        raise NotFound(f"No scorer with id {scorer_id!r}.") from None


def _row(scorer, request: Request, stats: dict | None = None) -> ScorerRow:
    return ScorerRow(
        scorer,
        stats if stats is not None else dict(EMPTY),
        request.build_absolute_uri(reverse("api-scorer-results", args=[scorer.id])),
    )


@extend_schema(
    summary="Score traces with a scorer, in the background",
    request=BatchRequestSerializer,
    responses={
        202: BatchStartedSerializer,
        400: OpenApiResponse(
            ERROR.response,
            description="Missing, empty or too many traceIds, malformed ids, a scopeType "
            "other than 'trace', or a scorer that is unavailable (with the reason).",
        ),
        401: UNAUTHORIZED,
        404: OpenApiResponse(
            ERROR.response, description="Unknown scorer, or none of the traces is known."
        ),
        415: OpenApiResponse(ERROR.response, description="The body is not application/json."),
    },
)
class BatchCreateView(generics.GenericAPIView):
    """Start scoring traces. Answers 202 at once; workers do the scoring."""

    serializer_class = BatchRequestSerializer
    # JSON only: a form cannot carry 10,000 ids (Django stops at 1,000 fields).
    parser_classes = [BoundedJSONParser]

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            batch = services.start_batch(
                scorer_id=data["scorerId"],
                trace_ids=data["traceIds"],
                scope_type=data["scopeType"],
                created_by=request.user,
            )
        except services.BatchError as error:
            return Response({"detail": str(error)}, status=error.status_code)
        count = batch.trace_count
        body = {
            "message": f"Scoring started for {count} trace{'s' if count != 1 else ''}",
            "traceCount": count,
            "status": "initiated",
            "batchId": str(batch.pk),
            "unknownTraceIds": batch.unknown_trace_ids,
        }
        location = reverse("api-batch-detail", args=[batch.pk])
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


@extend_schema(
    summary="A scoring batch and its progress",
    responses={200: BatchSerializer, 400: BAD_PATH, 401: UNAUTHORIZED, 404: ERROR},
)
class BatchDetailView(generics.RetrieveAPIView):
    serializer_class = BatchSerializer
    queryset = ScoringBatch.objects.all()
    lookup_url_kwarg = "batch_id"
    filter_backends = []

    def get_object(self) -> ScoringBatch:
        batch_id = self.kwargs["batch_id"]
        batch = ScoringBatch.objects.filter(pk=batch_id).first() if is_uuid(batch_id) else None
        if batch is None:
            raise NotFound(f"No scoring batch with id {self.kwargs['batch_id']}.")
        return batch


@extend_schema(
    summary="Scores of one trace, newest first",
    parameters=[TRACE_ID],
    responses={200: ScoreSerializer(many=True), 400: BAD_PAGE, 401: UNAUTHORIZED, 404: ERROR},
)
class TraceScoresView(generics.ListAPIView):
    serializer_class = ScoreSerializer
    filter_backends = []
    queryset = Score.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Score.objects.none()
        trace_id = self.kwargs["trace_id"].lower()
        if not Trace.objects.filter(trace_id=trace_id).exists():
            raise NotFound(f"No trace with id {self.kwargs['trace_id']}.")
        return Score.objects.filter(trace_id=trace_id).newest_first()


@extend_schema(
    summary="Registered scorers with their availability and statistics",
    responses={200: ScorerSerializer(many=True), 401: UNAUTHORIZED},
)
class ScorerListView(generics.GenericAPIView):
    serializer_class = ScorerSerializer
    pagination_class = None
    filter_backends = []

    def get(self, request: Request) -> Response:
        stats = scorer_stats()
        rows = [_row(s, request, stats.get(s.id)) for s in registry.all()]
        return Response(self.get_serializer(rows, many=True).data)


@extend_schema(
    summary="One scorer with its statistics",
    parameters=[SCORER_ID],
    responses={200: ScorerSerializer, 400: BAD_PATH, 401: UNAUTHORIZED, 404: ERROR},
)
class ScorerDetailView(generics.GenericAPIView):
    serializer_class = ScorerSerializer
    filter_backends = []

    def get(self, request: Request, scorer_id: str) -> Response:
        scorer = _scorer_or_404(scorer_id)
        row = _row(scorer, request, scorer_stats(scorer.id).get(scorer.id))
        return Response(self.get_serializer(row).data)


@extend_schema(
    summary="Every result of one scorer, newest first, with links to its traces",
    parameters=[SCORER_ID],
    responses={200: ScoreSerializer(many=True), 400: ERROR, 401: UNAUTHORIZED, 404: ERROR},
)
class ScorerResultsView(generics.ListAPIView):
    serializer_class = ScoreSerializer
    filterset_class = ScoreFilter
    queryset = Score.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Score.objects.none()
        scorer_id = self.kwargs["scorer_id"]
        if not Score.objects.filter(scorer_id=scorer_id).exists():
            _scorer_or_404(scorer_id)
        return Score.objects.filter(scorer_id=scorer_id).newest_first()
