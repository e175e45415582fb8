"""ASGI entry point, what the production command serves (see tracescore/server.py).

The server's event loop reads every request body, however slowly it arrives,
and Django's ASGI handler runs a view only once its request is complete, so a
slow client holds a few kilobytes of memory, never a worker (docs/deploy.md).

``BoundedBody`` is the ASGI counterpart of ``tracescore.wsgi.ChunkedBody``:

- Django's ASGI handler reads a whole body before any view can look at it,
  with no limit. A body announced larger than the ingest limit is therefore
  not read at all (the view refuses it from its ``Content-Length``), and a
  chunked body is read only up to one byte past the limit.
- A chunked body (every Node OTLP exporter sends them) has no
  ``Content-Length``; it gets one, the length read, so the ingest view applies
  its size limit to it as to any other body and answers 413 past it.
"""

from __future__ import annotations

import os
import warnings

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracescore.settings")

# WhiteNoise serves static files with a file iterator that Django, under ASGI,
# reads in a thread: correct, but Django warns on every file served.
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators"
)


def _header(headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class BoundedBody:
    """ASGI middleware: read at most ``limit + 1`` bytes of a body; give a chunked one a length."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        length = _header(headers, b"content-length")
        if length is None and b"chunked" in (_header(headers, b"transfer-encoding") or b"").lower():
            chunks = await read_up_to(receive, self.limit + 1)
            if chunks is None:
                return  # the client went away before its body ended: nobody to answer
            size = sum(len(chunk) for chunk in chunks)
            scope = {**scope, "headers": [*headers, (b"content-length", str(size).encode())]}
            receive = replay(chunks, receive)
        elif length is not None and length.strip().isdigit() and int(length) > self.limit:
            # Refused unread: the ingest view answers 413 from the header alone,
            # other views refuse it through DATA_UPLOAD_MAX_MEMORY_SIZE.
            receive = replay([], receive)
        return await self.app(scope, receive, send)


async def read_up_to(receive, size: int) -> list[bytes] | None:
    """The body's chunks up to ``size`` bytes, or None when the client disconnects first."""
    chunks, total = [], 0
    while total < size:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")[: size - total]
        if chunk:
            chunks.append(chunk)
            total += len(chunk)
        if not message.get("more_body", False):
            break
    return chunks


def replay(chunks: list[bytes], receive):
    """A ``receive`` that hands out ``chunks`` as the whole body, then waits for the disconnect.

    Whatever the client still sends after them (the rest of a body past the
    limit) is read and dropped, so that Django, which listens for the
    disconnect while the view runs, sees nothing but the disconnect.
    """
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    if messages:
        messages[-1]["more_body"] = False
    else:
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive_replayed():
        if messages:
            return messages.pop(0)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message

    return receive_replayed


def _application():
    django_app = get_asgi_application()
    from django.conf import settings
    from django.urls import get_resolver

    # Import every view now, while the process boots, not during its first
    # request (which would otherwise wait for it, on every new process).
    get_resolver().url_patterns  # noqa: B018
    return BoundedBody(django_app, settings.TRACESCORE_INGEST_MAX_BODY_BYTES)


application = _application()
