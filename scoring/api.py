"""REST API for scorers, scoring batches and scores."""

from __future__ import annotations

import uuid

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
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
    BatchEstimatedSerializer,
    BatchPreviewSerializer,
    BatchRequestSerializer,
    BatchSerializer,
    BatchStartedSerializer,
    ScorerSerializer,
    ScoreSerializer,
    estimate_body,
    plan_body,
    started_message,
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


BATCH_400 = OpenApiResponse(
    ERROR.response,
    description="Missing, empty or too many traceIds, targets or scorers (at most "
    f"{services.MAX_BATCH_TRACES:,} traces, {services.MAX_BATCH_TARGETS:,} targets, "
    f"{services.MAX_BATCH_SCORERS} scorers and {services.MAX_BATCH_SCORES:,} scores per "
    "batch), malformed ids, a request form that does not fit its scopeType, or a scorer "
    "that is unavailable (with the reason).",
)
BATCH_404 = OpenApiResponse(
    ERROR.response,
    description="Unknown scorer, or none of the traces (or targets) is known.",
)
BATCH_503 = OpenApiResponse(
    ERROR.response,
    description="The task queue is unavailable: nothing was created (retry later, "
    "after Retry-After seconds).",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=(
        "Any unique string (up to 255 characters), e.g. a UUID. A request repeated "
        "with the same key by the same user returns the batch the first one started "
        "(with `Idempotent-Replayed: true`) instead of starting another."
    ),
)


def _preview(serializer: BatchRequestSerializer) -> Response:
    """What a valid batch request would score, with its estimate when asked; starts nothing."""
    try:
        plan = services.plan_batch(**serializer.service_kwargs())
    except services.BatchError as error:
        return Response({"detail": str(error)}, status=error.status_code)
    body = plan_body(plan)
    if serializer.validated_data["estimate"]:
        body["estimate"] = estimate_body(services.estimate_batch(plan))
    return Response(body)


@extend_schema(
    summary="Score traces or spans with one or more scorers, in the background",
    request=BatchRequestSerializer,
    responses={
        200: OpenApiResponse(
            BatchEstimatedSerializer,
            description='With "estimate": true: what the batch would score and cost; '
            "nothing is started or stored.",
        ),
        202: BatchStartedSerializer,
        400: BATCH_400,
        401: UNAUTHORIZED,
        404: BATCH_404,
        415: OpenApiResponse(ERROR.response, description="The body is not application/json."),
        503: BATCH_503,
    },
    parameters=[IDEMPOTENCY_KEY],
)
class BatchCreateView(generics.GenericAPIView):
    """Start scoring traces or spans. Answers 202 at once; workers do the scoring.

    With ``"estimate": true`` it starts nothing and answers 200 with the tokens and
    cost its judges would use. ``maxCostUsd`` caps what the batch's judges spend.

    One Score per (scorer, target span). A scorer that does not apply to a
    span's type skips it (``skipCount``): the Score ends ``skipped``, never failed.
    """

    serializer_class = BatchRequestSerializer
    # JSON only: a form cannot carry 10,000 ids (Django stops at 1,000 fields).
    parser_classes = [BoundedJSONParser]

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data["estimate"]:
            return _preview(serializer)
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 255:
            return Response(
                {"detail": "The Idempotency-Key header takes at most 255 characters."}, status=400
            )
        try:
            batch = services.start_batch(
                **serializer.service_kwargs(),
                created_by=request.user,
                idempotency_key=key,
                max_cost_usd=serializer.validated_data.get("maxCostUsd"),
            )
        except services.BatchError as error:
            headers = {"Retry-After": "10"} if error.status_code == 503 else None
            return Response({"detail": str(error)}, status=error.status_code, headers=headers)
        body = {
            "message": started_message(batch.plan),
            "status": "initiated",
            "batchId": str(batch.pk),
            **plan_body(batch.plan),
        }
        headers = {"Location": reverse("api-batch-detail", args=[batch.pk])}
        if batch.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


@extend_schema(
    summary="What a batch request would score, how many targets each scorer skips, and "
    "(with estimate) what its judges would cost",
    request=BatchRequestSerializer,
    responses={
        200: BatchPreviewSerializer,
        400: BATCH_400,
        401: UNAUTHORIZED,
        404: BATCH_404,
        415: OpenApiResponse(ERROR.response, description="The body is not application/json."),
    },
)
class BatchPreviewView(generics.GenericAPIView):
    """The same request as the batch endpoint; nothing is started or stored."""

    serializer_class = BatchRequestSerializer
    parser_classes = [BoundedJSONParser]

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _preview(serializer)


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
    parameters=[
        TRACE_ID,
        OpenApiParameter("spanId", OpenApiTypes.STR, description="Only this span's scores."),
        OpenApiParameter("scorerId", OpenApiTypes.STR, description="Only this scorer's scores."),
    ],
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
        scores = Score.objects.filter(trace_id=trace_id)
        span_id = self.request.query_params.get("spanId")
        if span_id:
            scores = scores.filter(span_id=span_id.lower())
        scorer_id = self.request.query_params.get("scorerId")
        if scorer_id:
            scores = scores.filter(scorer_id=scorer_id)
        return scores.newest_first()


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
