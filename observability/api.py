"""REST API for traces and spans."""

from rest_framework import generics, serializers

from observability.models import Trace


class TraceSerializer(serializers.ModelSerializer):
    traceId = serializers.CharField(source="trace_id")  # noqa: N815 - API is camelCase
    spanType = serializers.CharField(source="span_type")  # noqa: N815
    startedAt = serializers.DateTimeField(source="started_at")  # noqa: N815
    durationMs = serializers.FloatField(source="duration_ms")  # noqa: N815
    spanCount = serializers.IntegerField(source="span_count")  # noqa: N815

    class Meta:
        model = Trace
        fields = ["traceId", "name", "spanType", "status", "startedAt", "durationMs", "spanCount"]


class TraceListView(generics.ListAPIView):
    serializer_class = TraceSerializer
    queryset = Trace.objects.newest_first()
