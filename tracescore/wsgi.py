"""WSGI entry point, for WSGI servers; the production command serves tracescore.asgi.

Served by gunicorn's sync workers, a slow request body ties up a worker until
it ends (docs/deploy.md), so the production command runs the ASGI application.

``ChunkedBody`` reads request bodies sent with ``Transfer-Encoding: chunked``
(every Node OTLP exporter sends them so). Django takes the body length from
``Content-Length`` only and would read such a body as empty; the server
(gunicorn) decodes the chunks, and this reads them, up to one byte past the
ingest limit, so an oversized body is still refused with 413 by the view.
"""

from __future__ import annotations

import io
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracescore.settings")


class ChunkedBody:
    """WSGI middleware: give a chunked request body a ``Content-Length``."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = read_up_to(environ["wsgi.input"], self.limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def read_up_to(stream, size: int) -> bytes:
    """Read until the end of the body or ``size`` bytes, whichever comes first."""
    parts, remaining = [], size
    while remaining > 0:
        data = stream.read(min(remaining, 64 * 1024))
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


def _application():
    django_app = get_wsgi_application()
    from django.conf import settings

    return ChunkedBody(django_app, settings.TRACESCORE_INGEST_MAX_BODY_BYTES)


application = _application()
