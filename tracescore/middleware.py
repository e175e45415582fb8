"""Project-wide request middleware."""

from django.http import HttpRequest, HttpResponseBadRequest, JsonResponse

NUL_IN_URL = "The URL contains a NUL character, which no page or id can."


class RejectNulInPath:
    """Answer 400 to a path with a NUL character (``/traces/%00/``).

    No id or page has one, and PostgreSQL refuses NUL in any query, so such a
    path would otherwise reach the database and fail there.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if "\x00" in request.path:
            if request.path.startswith(("/api/", "/v1/")):
                return JsonResponse({"error": NUL_IN_URL}, status=400)
            return HttpResponseBadRequest(NUL_IN_URL, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
