"""REST API for scorers, scoring batches and scores."""

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.scorers import registry


class ScorerListView(APIView):
    def get(self, request: Request) -> Response:
        return Response(
            [
                {"id": s.id, "name": s.name, "description": s.description, "kind": s.kind}
                for s in registry.all()
            ]
        )
