"""The WSGI entry point (for deployments that run ``tracescore.wsgi``) reads chunked bodies.

The production command serves ``tracescore.asgi``; WSGI servers such as gunicorn's
sync workers decode the chunks and hand Django a body with no ``Content-Length``,
which ``ChunkedBody`` reads up to one byte past the ingest limit.
"""

import io

from tracescore.wsgi import ChunkedBody


def run(body: bytes, limit: int, **environ):
    seen = {}

    def app(env, start_response):
        seen["length"] = env.get("CONTENT_LENGTH")
        seen["body"] = env["wsgi.input"].read()
        return [b""]

    ChunkedBody(app, limit)({"wsgi.input": io.BytesIO(body), **environ}, None)
    return seen


def test_a_chunked_body_gets_its_length_and_is_read_whole():
    seen = run(b"x" * 200_000, 1_000_000, HTTP_TRANSFER_ENCODING="chunked")
    assert seen == {"length": "200000", "body": b"x" * 200_000}


def test_a_chunked_body_past_the_limit_is_read_one_byte_past_it_so_the_view_answers_413():
    seen = run(b"x" * 5_000, 1_000, HTTP_TRANSFER_ENCODING="chunked")
    assert seen["length"] == "1001"
    assert len(seen["body"]) == 1001


def test_a_body_with_a_content_length_is_left_to_django():
    seen = run(b"abc", 1_000, CONTENT_LENGTH="3")
    assert seen == {"length": "3", "body": b"abc"}
