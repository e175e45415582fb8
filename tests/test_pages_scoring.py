"""The scorers page, a scorer's results, the "Score Selected" modal and batch progress."""

import json

import pytest

from observability.services import ingest_spans
from scoring import services
from scoring.models import Score, ScoringBatch
from tests.factories import EVIL, agent_trace, new_trace_id, span
from tests.factories import make_score as add_score

pytestmark = pytest.mark.django_db


def test_the_scorers_page_lists_every_scorer_with_results_count_and_mean(alice_client):
    trace = agent_trace()
    add_score(trace, score=0.5)
    add_score(trace, score=1.0)
    html = alice_client.get("/scorers/").content.decode()
    assert "Completeness" in html
    assert "Error free" in html
    assert "0.75" in html
    assert "/scorers/completeness/results/" in html


def test_the_results_page_lists_each_result_with_a_link_to_its_trace(alice_client):
    trace = agent_trace(name="support-agent")
    add_score(trace, score=0.6, reason="Answer covers the question.")
    response = alice_client.get("/scorers/completeness/results/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Answer covers the question." in html
    assert f"/traces/{trace.trace_id}/" in html
    assert "<svg" in html
    assert "0.60" in html


def test_the_results_page_filters_by_status_and_score_range(alice_client):
    add_score(agent_trace(), score=0.1, reason="low one")
    add_score(agent_trace(), score=0.9, reason="high one")
    add_score(agent_trace(), score=None, status="failed", error="judge timed out")
    high = alice_client.get("/scorers/completeness/results/?min_score=0.5").content.decode()
    assert "high one" in high and "low one" not in high
    failed = alice_client.get("/scorers/completeness/results/?status=failed").content.decode()
    assert "judge timed out" in failed and "high one" not in failed


def test_the_results_page_answers_htmx_with_only_the_results(alice_client):
    add_score(agent_trace(), reason="partial reason")
    response = alice_client.get("/scorers/completeness/results/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "partial reason" in html
    assert "<html" not in html


def test_the_results_page_runs_a_fixed_number_of_queries(alice_client, django_assert_num_queries):
    for _ in range(10):
        add_score(agent_trace())
    alice_client.get("/scorers/completeness/results/")
    # session, user, count, page rows, histogram, mean
    with django_assert_num_queries(6):
        alice_client.get("/scorers/completeness/results/", HTTP_HX_REQUEST="true")


def test_an_unknown_scorer_has_no_results_page(alice_client):
    assert alice_client.get("/scorers/no-such-scorer/results/").status_code == 404


def test_untrusted_content_shows_as_text_on_the_results_page(alice_client):
    trace_id = new_trace_id()
    ingest_spans([span(trace_id, name=EVIL, output=EVIL)])
    from observability.models import Trace

    add_score(Trace.objects.get(trace_id=trace_id), reason=EVIL)
    html = alice_client.get("/scorers/completeness/results/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;" in html


def selection(*traces) -> str:
    return json.dumps({"traceIds": [t.trace_id for t in traces]})


def test_the_modal_previews_each_chosen_scorer_and_what_it_skips(alice_client):
    traces = [agent_trace() for _ in range(3)]
    opened = alice_client.get("/batches/new/?count=3", HTTP_HX_REQUEST="true").content.decode()
    assert "<dialog" not in opened and "<html" not in opened
    assert "Choose the scorers to run on the 3 selected traces." in opened
    assert 'id="run-scorer" name="action" value="run" disabled' in opened
    html = alice_client.post(
        "/batches/new/",
        {
            "selection": selection(*traces),
            "scorer_ids": ["completeness", "tool-call-accuracy"],
            "scope": "llm_generation",
        },
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "12 scores: 6 spans × 2 scorers" in html
    assert "Applies to all 6 targets" in html
    assert "Will skip 6 of 6 targets it does not apply to" in html
    assert 'value="run" disabled' not in html
    assert not ScoringBatch.objects.exists()


def test_the_modal_disables_unavailable_scorers_and_says_why(alice_client, settings):
    settings.TRACESCORE_JUDGE_BASE_URL = ""
    html = alice_client.get("/batches/new/?count=1", HTTP_HX_REQUEST="true").content.decode()
    assert 'value="faithfulness" disabled' in html
    assert "Unavailable: No LLM judge configured" in html
    assert 'value="completeness">' in html


def test_the_scorers_page_runs_a_fixed_number_of_queries(alice_client, django_assert_num_queries):
    for scorer_id in ("completeness", "error-free", "latency"):
        add_score(agent_trace(), scorer_id=scorer_id)
    alice_client.get("/scorers/")
    # session, user, one aggregate over every scorer's scores
    with django_assert_num_queries(3):
        alice_client.get("/scorers/")


def test_running_scorers_starts_one_batch_and_says_scoring_started(alice_client):
    traces = [agent_trace() for _ in range(3)]
    response = alice_client.post(
        "/batches/new/",
        {
            "selection": selection(*traces),
            "scorer_ids": ["completeness", "latency"],
            "scope": "trace",
            "action": "run",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "Scoring started" in response.content.decode()
    batch = ScoringBatch.objects.get()
    assert batch.scorer_ids == ["completeness", "latency"]
    assert Score.objects.filter(batch=batch, status="pending").count() == 6
    event = json.loads(response["HX-Trigger"])["batchStarted"]
    assert event["batchId"] == str(batch.pk) and event["mode"] == "traces"


def test_the_modal_takes_two_thousand_traces_in_one_field(alice_client):
    from observability.models import Trace
    from tests.factories import new_trace_id

    Trace.objects.bulk_create(
        [Trace(trace_id=new_trace_id(), root_span_id="ab" * 8, has_root=True) for _ in range(2000)]
    )
    ids = list(Trace.objects.values_list("trace_id", flat=True))
    response = alice_client.post(
        "/batches/new/",
        {
            "selection": json.dumps({"traceIds": ids}),
            "scorer_ids": ["latency"],
            "scope": "trace",
            "action": "run",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200, response.content.decode()[:500]
    assert ScoringBatch.objects.get().trace_count == 2000


def test_running_an_unknown_scorer_shows_the_error_in_the_modal(alice_client):
    trace = agent_trace()
    response = alice_client.post(
        "/batches/new/",
        {"selection": selection(trace), "scorer_ids": ["nope"], "scope": "trace", "action": "run"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert "nope is not one of the available choices" in response.content.decode()
    assert not ScoringBatch.objects.exists()


def test_running_a_scorer_on_no_traces_shows_the_error_in_the_modal(alice_client):
    response = alice_client.post(
        "/batches/new/",
        {"scorer_ids": ["completeness"], "scope": "trace", "action": "run"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "Nothing is selected." in response.content.decode()
    response = alice_client.post(
        "/batches/new/",
        {
            "selection": selection(),
            "scorer_ids": ["completeness"],
            "scope": "trace",
            "action": "run",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "traceIds must be a non-empty list" in response.content.decode()


def test_a_preview_with_a_span_type_no_trace_has_says_so_and_offers_no_run(alice_client):
    trace = agent_trace()
    html = alice_client.post(
        "/batches/new/",
        {
            "selection": selection(trace),
            "scorer_ids": ["latency"],
            "scope": "type",
            "span_type": "embedding",
        },
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "has a span of type embedding" in html
    assert 'value="run" disabled' in html


def test_batch_progress_counts_done_failed_and_total_and_polls_until_finished(alice_client):
    traces = [agent_trace() for _ in range(3)]
    alice_client.post(
        "/batches/new/",
        {
            "selection": selection(*traces),
            "scorer_ids": ["completeness"],
            "scope": "trace",
            "action": "run",
        },
    )
    batch = ScoringBatch.objects.get()
    services.claim_score(score_id=Score.objects.filter(batch=batch).first().pk)
    html = alice_client.get(f"/batches/{batch.pk}/progress/?poll=1").content.decode()
    assert "0 done / 0 failed / 3 total" in html
    assert "(queued: 2, running: 1)" in html
    assert "every 1s" in html
    Score.objects.filter(batch=batch).update(status="succeeded", score=1.0)
    response = alice_client.get(f"/batches/{batch.pk}/progress/?poll=1")
    html = response.content.decode()
    assert "3 done / 0 failed / 3 total" in html
    assert "every 1s" not in html
    assert "batchFinished" in response["HX-Trigger"]
