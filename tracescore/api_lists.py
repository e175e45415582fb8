"""Pagination and filtering that every API list shares (DRF's defaults in settings).

Kept apart from the views: DRF imports these while it loads, so this module
must not import DRF's views.
"""

from __future__ import annotations

import re

from django_filters import CharFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

PAGE_NUMBER = re.compile(r"^[0-9]{1,9}$")
MAX_PAGE = 999_999_999


class ApiPageNumberPagination(PageNumberPagination):
    """DRF's page numbers, strictly: ``page`` is a whole number from 1, else a 400 naming it.

    DRF takes ``page=last``, ``page=1.0`` and an empty ``page``, and answers a
    non-number with a 404, as if the page were merely past the end. A page past
    the end is still a 404.
    """

    last_page_strings = ()
    page_query_description = "A page number, from 1 (the default)."

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not PAGE_NUMBER.match(raw) or int(raw) < 1:
            raise ValidationError(
                {self.page_query_param: [f"Enter a whole number from 1 to {MAX_PAGE:,}."]}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        parameters[0]["schema"].update(minimum=1, maximum=MAX_PAGE)
        return parameters


class ApiFilterBackend(DjangoFilterBackend):
    """django-filter for the API: a filter sent empty is a 400 unless it takes free text.

    The HTML pages share these FilterSets, and their forms send every field,
    the empty ones too, so there an empty field means "any". An API client
    sends the parameters it means: ``created_before=`` is a mistake to report,
    not a filter to drop silently.
    """

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        empty = {
            name: ["Enter a value, or leave the parameter out."]
            for name, field in filterset.filters.items()
            if not isinstance(field, CharFilter) and "" in request.query_params.getlist(name)
        }
        if empty:
            raise ValidationError(empty)
        return filterset
