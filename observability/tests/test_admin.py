"""Admin pages for traces, spans and ingest keys, as a staff member uses them."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from observability.models import IngestKey, LogRecord
from observability.services import authenticate_ingest_key, create_ingest_key, ingest_spans
from tests.factories import add_log, agent_trace, new_trace_id, span

pytestmark = pytest.mark.django_db

TRACES = "/admin/observability/trace/"
SPANS = "/admin/observability/span/"
KEYS = "/admin/observability/ingestkey/"


def page(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_trace_list_shows_each_trace_with_a_link_to_its_page(admin_client):
    trace = agent_trace(name="support-agent", tool_error="orders-api timed out")
    html = page(admin_client.get(TRACES))
    assert "support-agent" in html
    assert f'href="/traces/{trace.trace_id}/"' in html
    assert "2.40 s" in html
    for column in ("Span type", "Status", "Started at", "Duration", "Span count", "Has root"):
        assert column in html
    for choice in ("Agent run", "Error", "Past 7 days"):
        assert choice in html


def test_trace_list_searches_by_trace_id_and_name_and_filters_by_status(admin_client):
    refund = agent_trace(name="refund-agent")
    failing = agent_trace(name="support-agent", tool_error="boom")
    by_id = page(admin_client.get(TRACES, {"q": refund.trace_id}))
    assert "refund-agent" in by_id and "support-agent" not in by_id
    by_name = page(admin_client.get(TRACES, {"q": "support"}))
    assert failing.trace_id in by_name and refund.trace_id not in by_name
    errors = page(admin_client.get(TRACES, {"status__exact": "error"}))
    assert "support-agent" in errors and "refund-agent" not in errors


def test_a_trace_page_is_read_only_and_lists_its_spans(admin_client):
    trace = agent_trace(name="support-agent")
    html = page(admin_client.get(f"{TRACES}{trace.trace_id}/change/"))
    assert 'name="_save"' not in html
    assert "lookup_order" in html and "chat gpt-4o-mini" in html
    assert f'href="/traces/{trace.trace_id}/"' in html
    assert f"?trace={trace.trace_id}" in html
    assert admin_client.post(f"{TRACES}{trace.trace_id}/change/", {"name": "x"}).status_code == 403
    assert admin_client.get(f"{TRACES}add/").status_code == 403


def test_a_very_long_trace_links_to_its_spans_instead_of_listing_them(admin_client):
    trace_id = new_trace_id()
    ingest_spans([span(trace_id, name=f"step {i}") for i in range(201)])
    html = page(admin_client.get(f"{TRACES}{trace_id}/change/"))
    assert "All 201 spans" in html
    assert "step 17" not in html
    spans = page(admin_client.get(SPANS, {"trace": trace_id}))
    assert "step 17" in spans


def test_span_list_searches_by_trace_id_span_id_and_name(admin_client):
    first = agent_trace(name="support-agent")
    second = agent_trace(name="research-agent")
    tool = first.spans.get(name="lookup_order")
    assert second.trace_id not in page(admin_client.get(SPANS, {"q": first.trace_id}))
    by_span = page(admin_client.get(SPANS, {"q": tool.span_id}))
    assert by_span.count(f"/admin/observability/span/{tool.pk}/change/") == 1
    assert "1 result" in by_span
    assert "lookup_order" in page(admin_client.get(SPANS, {"q": "lookup"}))


def test_span_list_filters_by_type_and_status(admin_client):
    agent_trace(tool_error="timeout")
    tools = page(admin_client.get(SPANS, {"span_type__exact": "tool_call"}))
    assert "lookup_order" in tools and "chat gpt-4o-mini" not in tools
    failed = page(admin_client.get(SPANS, {"status__exact": "error"}))
    assert "lookup_order" in failed and "chat gpt-4o-mini" not in failed


def test_span_list_query_count_does_not_grow_with_the_rows(admin_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page(admin_client.get(SPANS))
        return len(captured)

    agent_trace()
    few = queries()
    for _ in range(10):
        agent_trace()
    assert queries() == few


def test_a_span_page_shows_its_content_as_escaped_json(admin_client):
    trace_id = new_trace_id()
    ingest_spans(
        [
            span(
                trace_id,
                name="answer",
                output="<script>alert(1)</script>",
                attributes={"metadata": {"expected_tools": ["lookup_order"]}},
            )
        ]
    )
    listing = page(admin_client.get(SPANS, {"q": trace_id}))
    pk = re.search(r"/admin/observability/span/(\d+)/change/", listing).group(1)
    html = page(admin_client.get(f"{SPANS}{pk}/change/"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "&quot;expected_tools&quot;: [" in html
    assert 'name="_save"' not in html


def test_adding_an_ingest_key_asks_only_for_a_name_and_shows_the_secret_once(admin_client):
    form = page(admin_client.get(f"{KEYS}add/"))
    assert 'name="name"' in form
    assert "hashed_secret" not in form and 'name="prefix"' not in form

    response = admin_client.post(f"{KEYS}add/", {"name": "checkout-agent prod"})

    # The secret is in the answer to the POST itself, a page that is never cached …
    html = page(response)
    secret = re.search(r"Bearer (tsk_[\w-]+)", html).group(1)
    key = IngestKey.objects.get(name="checkout-agent prod")
    assert authenticate_ingest_key(secret) == key
    assert "shown only this once" in html
    assert "no-store" in response["Cache-Control"]
    # … and in no cookie: Django's messages cookie is signed, not encrypted.
    assert "messages" not in response.cookies  # (its value may be compressed)
    assert secret not in str(response.cookies)
    assert secret not in str(admin_client.get(KEYS).cookies)
    assert secret not in str(admin_client.cookies)
    assert secret not in page(admin_client.get(KEYS))
    key_page = page(admin_client.get(f"{KEYS}{key.pk}/change/"))
    assert secret not in key_page and key.hashed_secret not in key_page
    assert f"{key.prefix}…" in key_page


def test_an_ingest_key_cannot_be_edited_or_deleted(admin_client):
    key, _ = create_ingest_key(name="ci")
    html = page(admin_client.get(f"{KEYS}{key.pk}/change/"))
    assert 'name="name"' not in html and 'name="_save"' not in html
    assert admin_client.post(f"{KEYS}{key.pk}/change/", {"name": "x"}).status_code == 403
    assert admin_client.post(f"{KEYS}{key.pk}/delete/", {"post": "yes"}).status_code == 403
    key.refresh_from_db()
    assert key.name == "ci"


def test_revoke_selected_keys_stops_them_from_authenticating(admin_client):
    active, active_secret = create_ingest_key(name="agent")
    kept, kept_secret = create_ingest_key(name="other")
    old, _ = create_ingest_key(name="old")
    admin_client.post(KEYS, {"action": "revoke_selected", "_selected_action": [old.pk]})

    response = admin_client.post(
        KEYS,
        {"action": "revoke_selected", "_selected_action": [active.pk, old.pk]},
        follow=True,
    )

    html = page(response)
    assert "Revoked 1 key; exporters using them get 401 from their next request." in html
    assert "1 was already revoked." in html
    assert authenticate_ingest_key(active_secret) is None
    assert authenticate_ingest_key(kept_secret) == kept
    assert "Revoke selected keys" in html


LOGS = "/admin/observability/logrecord/"


def test_log_list_searches_by_trace_id_or_span_id_and_opens_a_read_only_escaped_page(
    admin_client,
):
    first, second = agent_trace(), agent_trace()
    tool = first.spans.get(name="lookup_order")
    add_log(first.trace_id, tool.span_id, "<script>alert(1)</script>", severity_text="")
    add_log(second.trace_id, second.root_span_id, "other trace")

    by_trace = page(admin_client.get(LOGS, {"q": first.trace_id}))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in by_trace
    assert "other trace" not in by_trace
    assert f'href="/traces/{first.trace_id}/"' in by_trace
    assert "INFO" in by_trace  # severity named from its number when no text was sent
    assert "other trace" in page(admin_client.get(LOGS, {"q": second.root_span_id}))

    pk = re.search(r"/admin/observability/logrecord/(\d+)/change/", by_trace).group(1)
    html = page(admin_client.get(f"{LOGS}{pk}/change/"))
    assert "<script>alert(1)" not in html
    assert 'name="_save"' not in html


def test_deleting_a_trace_deletes_its_logs(admin_client):
    trace = agent_trace()
    add_log(trace.trace_id, trace.root_span_id)
    other = agent_trace()
    add_log(other.trace_id, other.root_span_id)
    trace.delete()
    assert list(LogRecord.objects.values_list("trace_id", flat=True)) == [other.trace_id]
