"""Scorer pages."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from scoring.scorers import registry


@require_GET
def scorer_list(request: HttpRequest) -> HttpResponse:
    return render(request, "scoring/scorer_list.html", {"scorers": registry.all()})
