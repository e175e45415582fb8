"""Project-wide request middleware."""

from csp.constants import UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
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


class ContentSecurityPolicy(CSPMiddleware):
    """django-csp's middleware with one exception, for pages we do not write.

    DRF's browsable API templates put ``style`` attributes on their layout, so
    its HTML pages (under /api/, except the docs, which are ours) may use inline
    styles. Scripts stay ``'self'`` everywhere.
    """

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        browsable_api = (
            request.path_info.startswith("/api/")
            and not request.path_info.startswith("/api/docs/")
            and response.get("Content-Type", "").startswith("text/html")
        )
        if browsable_api and not report_only:
            parts.update = {**(parts.update or {}), "style-src": [UNSAFE_INLINE]}
        return parts
