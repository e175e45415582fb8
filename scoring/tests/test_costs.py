"""Judge costs: estimates counted with tiktoken before a batch starts, and cost caps.

The judges run for real against the loopback OpenAI-compatible server, which
records every request, so estimates are checked against the prompts the judges
actually sent.
"""

import importlib
import json

import pytest
from django.apps import apps

from scoring import costs, services
from scoring.choices import ScoreStatus
from scoring.models import Score, ScoringBatch, ScoringRule
from scoring.scorers.judging import NO_STRUCTURED_OUTPUT, SYSTEM
from scoring.scorers.tokens import encoding_name, get_encoding
from tests.factories import agent_trace
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.django_db

ANSWER = "Your order 1042 shipped yesterday. It arrives Friday!"


@pytest.fixture
def judge(settings):
    NO_STRUCTURED_OUTPUT.clear()
    with FakeOpenAI() as server:
        settings.TRACESCORE_JUDGE_BASE_URL = server.base_url
        settings.TRACESCORE_JUDGE_MODEL = "gpt-4o-mini"
        settings.TRACESCORE_JUDGE_MAX_RETRIES = 0
        settings.TRACESCORE_JUDGE_PRICES = {"gpt-4o-mini": {"input": 2.0, "output": 8.0}}
        yield server
    NO_STRUCTURED_OUTPUT.clear()


def chat_tokens(messages, encoding) -> int:
    """OpenAI's count of a chat request: 3 per message, its role and content, 3 to reply."""
    return 3 + sum(
        3 + len(encoding.encode(m["role"])) + len(encoding.encode(m["content"])) for m in messages
    )


def estimate(api_client, trace_ids, *scorer_ids, **extra) -> dict:
    response = api_client.post(
        "/api/trace-scorers/batch",
        {"scorerIds": list(scorer_ids), "traceIds": trace_ids, "estimate": True, **extra},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["estimate"]


# --- the tokenizer -------------------------------------------------------------


def test_the_installed_encodings_give_tiktokens_published_tokens():
    # tiktoken's README: "hello world" in o200k_base; OpenAI's cookbook for cl100k_base.
    assert get_encoding("o200k_base").encode("hello world") == [24912, 2375]
    assert get_encoding("cl100k_base").encode("tiktoken is great!") == [
        83,
        1609,
        5963,
        374,
        2294,
        0,
    ]


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai/gpt-4.1", "o200k_base"),
        ("gpt-5-nano", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("llama3.1:8b", "cl100k_base"),
    ],
)
def test_the_encoding_follows_the_judge_model(model, encoding):
    assert encoding_name(model) == encoding


# --- estimates -------------------------------------------------------------------


def test_the_estimate_equals_the_tokens_of_what_the_judge_then_sends(api_client, judge, sync_tasks):
    trace = agent_trace(answer=ANSWER)
    expected = estimate(api_client, [trace.trace_id], "answer-relevancy", "completeness")
    assert (expected["model"], expected["encoding"]) == ("gpt-4o-mini", "o200k_base")
    assert expected["sampled"] == 0

    # The model answers exactly as the estimate assumes (docs/scorers.md): one
    # statement per sentence, then each verdict repeating its item as its reason.
    sentences = ["Your order 1042 shipped yesterday.", "It arrives Friday!"]
    replies = [
        {"statements": sentences},
        {"verdicts": [{"item": s, "verdict": "yes", "reason": s} for s in sentences]},
    ]
    judge.replies = [Reply(json.dumps(r)) for r in replies]
    with sync_tasks(execute=True):
        batch = services.start_batch(
            scorer_ids=["answer-relevancy", "completeness"], trace_ids=[trace.trace_id]
        )
    assert {s.scorer_id: s.status for s in batch.scores.all()} == {
        "answer-relevancy": "succeeded",
        "completeness": "succeeded",
    }
    encoding = get_encoding("o200k_base")
    sent = [request.body["messages"] for request in judge.requests]
    assert len(sent) == 2
    assert all(messages[0]["content"] == SYSTEM for messages in sent)
    prompt_tokens = sum(chat_tokens(messages, encoding) for messages in sent)
    completion_tokens = sum(len(encoding.encode(json.dumps(r))) for r in replies)

    judge_row, code_row = expected["scorers"]
    assert judge_row == {
        "scorerId": "answer-relevancy",
        "scores": 1,
        "promptTokens": prompt_tokens,
        "completionTokens": completion_tokens,
        "costUsd": pytest.approx((prompt_tokens * 2 + completion_tokens * 8) / 1e6),
        "priced": True,
    }
    assert code_row == {
        "scorerId": "completeness",
        "scores": 1,
        "promptTokens": 0,
        "completionTokens": 0,
        "costUsd": 0.0,
        "priced": True,
    }
    assert expected["promptTokens"] == prompt_tokens
    assert expected["costUsd"] == pytest.approx(judge_row["costUsd"])


def test_a_judge_that_cannot_run_on_a_trace_is_estimated_at_nothing(api_client, judge):
    # Faithfulness needs tool output to check against; this answer has none.
    trace = agent_trace(answer="")
    row = estimate(api_client, [trace.trace_id], "faithfulness")["scorers"][0]
    assert (row["promptTokens"], row["completionTokens"], row["costUsd"]) == (0, 0, 0.0)


def test_a_large_selection_is_counted_on_a_sample_and_scaled(api_client, judge, settings):
    traces = [agent_trace(answer=ANSWER) for _ in range(5)]
    one = estimate(api_client, [traces[0].trace_id], "toxicity")
    settings.TRACESCORE_ESTIMATE_EXACT_LIMIT = 2
    ids = [t.trace_id for t in traces]
    sampled = estimate(api_client, ids, "toxicity")
    assert sampled["sampled"] == 2
    # The traces are alike, so the scaled sample is exactly five times one trace.
    assert sampled["promptTokens"] == 5 * one["promptTokens"]
    assert sampled["completionTokens"] == 5 * one["completionTokens"]
    assert estimate(api_client, list(reversed(ids)), "toxicity") == sampled


def test_an_unpriced_judge_model_has_tokens_but_no_cost(api_client, judge, settings):
    settings.TRACESCORE_JUDGE_MODEL = "my-local-llama"
    result = estimate(api_client, [agent_trace().trace_id], "toxicity")
    assert result["encoding"] == "cl100k_base"
    assert result["promptTokens"] > 0
    assert result["costUsd"] is None
    assert result["scorers"][0]["priced"] is False


def test_an_estimate_creates_and_queues_nothing(api_client, judge, sync_tasks):
    trace = agent_trace()
    with sync_tasks(execute=True) as callbacks:
        estimate(api_client, [trace.trace_id], "toxicity", maxCostUsd=1)
    assert callbacks == []
    assert not ScoringBatch.objects.exists()
    assert not Score.objects.exists()
    assert judge.requests == []


def test_the_preview_endpoint_adds_the_estimate_when_asked(api_client, judge):
    trace = agent_trace()
    body = {"scorerId": "toxicity", "traceIds": [trace.trace_id]}
    plain = api_client.post("/api/trace-scorers/batch/preview", body, format="json").json()
    assert "estimate" not in plain and plain["scoreCount"] == 1
    asked = api_client.post(
        "/api/trace-scorers/batch/preview", {**body, "estimate": True}, format="json"
    ).json()
    assert asked["estimate"] == estimate(api_client, [trace.trace_id], "toxicity")


def test_a_code_only_selection_costs_nothing_and_names_no_model(api_client):
    result = estimate(api_client, [agent_trace().trace_id], "completeness")
    assert result["costUsd"] == 0.0
    assert (result["model"], result["encoding"], result["promptTokens"]) == (None, None, 0)


# --- the cap -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 0, "five", True, [1]])
def test_a_bad_cost_cap_is_refused_with_a_message(api_client, bad):
    trace = agent_trace()
    response = api_client.post(
        "/api/trace-scorers/batch",
        {"scorerId": "completeness", "traceIds": [trace.trace_id], "maxCostUsd": bad},
        format="json",
    )
    assert response.status_code == 400
    assert "maxCostUsd must be a positive number of US dollars" in response.json()["maxCostUsd"][0]
    assert not ScoringBatch.objects.exists()


def test_the_cost_cap_skips_the_judge_scores_past_it_mid_batch(
    api_client, alice_client, judge, sync_tasks
):
    # Each bias Score makes one call: (1000 × $2 + 100 × $8) / 1M = $0.0028.
    judge.default = Reply(json.dumps({"opinions": []}), input_tokens=1000, output_tokens=100)
    traces = [agent_trace() for _ in range(5)]
    with sync_tasks(execute=True):
        response = api_client.post(
            "/api/trace-scorers/batch",
            {
                "scorerIds": ["bias", "completeness"],
                "traceIds": [t.trace_id for t in traces],
                "maxCostUsd": 0.005,
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    batch = ScoringBatch.objects.get()
    assert batch.max_cost_usd == 0.005
    judged = batch.scores.filter(scorer_id="bias")
    assert sorted(judged.values_list("status", flat=True)) == ["skipped"] * 3 + ["succeeded"] * 2
    assert len(judge.requests) == 2  # nothing was sent for the skipped ones
    assert set(judged.filter(status="skipped").values_list("reason", flat=True)) == {
        "cost cap reached ($0.0056 of $0.005 spent)"
    }
    assert not batch.scores.filter(status=ScoreStatus.FAILED).exists()
    assert set(batch.scores.filter(scorer_id="completeness").values_list("status", flat=True)) == {
        "succeeded"
    }

    detail = api_client.get(f"/api/trace-scorers/batch/{batch.pk}").json()
    assert (detail["costUsd"], detail["maxCostUsd"], detail["skippedByCap"]) == (
        pytest.approx(0.0056),
        0.005,
        3,
    )
    per_scorer = {row["scorerId"]: row for row in detail["perScorer"]}
    assert per_scorer["bias"]["costUsd"] == pytest.approx(0.0056)
    assert per_scorer["bias"]["skippedByCap"] == 3
    assert per_scorer["completeness"]["costUsd"] is None

    progress = alice_client.get(f"/batches/{batch.pk}/progress/").content.decode()
    assert "cost cap $0.005: $0.0056 spent, 3 skipped by the cap" in progress
    results = alice_client.get("/scorers/bias/results/").content.decode()
    assert '<strong class="cost">$0.0056</strong>' in results
    assert '<strong class="capped">3</strong>' in results


def test_judges_under_a_cap_run_side_by_side_only_as_far_as_the_money_left_goes(
    api_client, judge, sync_tasks, settings
):
    # $0.0028 a Score and a $0.02 cap: the 8th starts with $0.0196 spent, the 9th
    # finds the cap reached, as if they had run one after another. After the
    # first Score's cost is known, several run at once while the money left pays.
    settings.TRACESCORE_JUDGE_CONCURRENCY = 16
    judge.default = Reply(
        json.dumps({"opinions": []}), input_tokens=1000, output_tokens=100, delay=0.2
    )
    traces = [agent_trace() for _ in range(12)]
    with sync_tasks(execute=True):
        response = api_client.post(
            "/api/trace-scorers/batch",
            {"scorerIds": ["bias"], "traceIds": [t.trace_id for t in traces], "maxCostUsd": 0.02},
            format="json",
        )
    assert response.status_code == 202, response.content
    batch = ScoringBatch.objects.get()
    statuses = sorted(batch.scores.values_list("status", flat=True))
    assert statuses == ["skipped"] * 4 + ["succeeded"] * 8
    assert len(judge.requests) == 8
    assert 1 < judge.stats()["peak_in_flight"] <= 7


def test_a_rules_cap_counts_every_score_of_the_rule(judge):
    rule = ScoringRule.objects.create(name="nightly", scorer_ids=["bias"], max_cost_usd=0.01)
    trace = agent_trace()
    batch = ScoringBatch.objects.create(scorer_id="bias", rule=rule)
    Score.objects.create(scorer_id="bias", trace=trace, rule=rule, cost_usd=0.006, batch=batch)
    pending = Score.objects.create(scorer_id="bias", trace=trace, rule=rule, span_id="b" * 16)
    loaded = Score.objects.select_related("batch", "rule").get(pk=pending.pk)
    assert costs.pre_run_skip_reason(loaded) is None
    Score.objects.create(scorer_id="bias", trace=trace, rule=rule, cost_usd=0.004)
    assert costs.pre_run_skip_reason(loaded) == (
        "cost cap reached ($0.01 of $0.01 spent by the rule)"
    )
    assert services.pre_run_skip_reason is costs.pre_run_skip_reason


def test_the_cap_check_is_one_aggregate_and_code_scorers_are_never_capped(
    judge, django_assert_num_queries
):
    trace = agent_trace()
    batch = ScoringBatch.objects.create(scorer_id="bias", max_cost_usd=0.001)
    Score.objects.create(scorer_id="bias", trace=trace, batch=batch, cost_usd=0.002)
    judge_score = Score.objects.create(scorer_id="bias", trace=trace, batch=batch, span_id="1" * 16)
    code_score = Score.objects.create(
        scorer_id="completeness", trace=trace, batch=batch, span_id="2" * 16
    )
    judge_score = Score.objects.select_related("batch", "rule").get(pk=judge_score.pk)
    code_score = Score.objects.select_related("batch", "rule").get(pk=code_score.pk)
    with django_assert_num_queries(1):
        assert costs.pre_run_skip_reason(judge_score).startswith("cost cap reached")
    with django_assert_num_queries(0):
        assert costs.pre_run_skip_reason(code_score) is None


# --- the modal ---------------------------------------------------------------------


def modal_post(client, traces, **fields):
    return client.post(
        "/batches/new/",
        {
            "selection": json.dumps({"traceIds": [t.trace_id for t in traces]}),
            "scope": "trace",
            **fields,
        },
        HTTP_HX_REQUEST="true",
    )


def test_the_modal_shows_the_estimate_for_a_judge_selection(alice_client, api_client, judge):
    traces = [agent_trace(answer=ANSWER), agent_trace()]
    expected = estimate(api_client, [t.trace_id for t in traces], "answer-relevancy")
    html = modal_post(alice_client, traces, scorer_ids=["answer-relevancy"]).content.decode()
    assert 'id="batch-estimate"' in html
    assert f"{expected['promptTokens']:,} prompt + {expected['completionTokens']:,} completion" in (
        html
    )
    assert "tiktoken (o200k_base)" in html
    cost = costs.format_usd(expected["costUsd"])
    assert f'<span class="estimate-cost">{cost}</span>' in html

    code_only = modal_post(alice_client, traces, scorer_ids=["completeness"]).content.decode()
    assert 'id="batch-estimate"' not in code_only


def test_the_modal_starts_a_capped_batch_and_refuses_a_bad_cap(alice_client, judge, sync_tasks):
    traces = [agent_trace()]
    bad = modal_post(alice_client, traces, scorer_ids=["toxicity"], max_cost_usd="-2")
    assert "The cost cap must be a positive number of US dollars" in bad.content.decode()
    refused = modal_post(
        alice_client, traces, scorer_ids=["toxicity"], max_cost_usd="abc", action="run"
    )
    assert refused.status_code == 400
    assert not ScoringBatch.objects.exists()
    with sync_tasks():
        started = modal_post(
            alice_client, traces, scorer_ids=["toxicity"], max_cost_usd="2.50", action="run"
        )
    assert started.status_code == 200
    assert ScoringBatch.objects.get().max_cost_usd == 2.5


# --- the data migration ---------------------------------------------------------------


def test_the_migration_copies_judge_costs_from_details_into_the_column():
    migration = importlib.import_module("scoring.migrations.0007_scoring_rules_and_costs")
    trace = agent_trace()
    priced = Score.objects.create(scorer_id="bias", trace=trace, details={"cost_usd": 0.0042})
    unpriced = Score.objects.create(
        scorer_id="bias", trace=trace, span_id="1" * 16, details={"cost_usd": None}
    )
    odd = Score.objects.create(
        scorer_id="bias", trace=trace, span_id="2" * 16, details={"cost_usd": True}
    )
    code = Score.objects.create(scorer_id="completeness", trace=trace, span_id="3" * 16)
    kept = Score.objects.create(
        scorer_id="bias", trace=trace, span_id="4" * 16, details={"cost_usd": 9}, cost_usd=0.5
    )
    migration.copy_judge_costs(apps, None)
    costs_now = dict(Score.objects.values_list("pk", "cost_usd"))
    assert costs_now == {
        priced.pk: 0.0042,
        unpriced.pk: None,
        odd.pk: None,
        code.pk: None,
        kept.pk: 0.5,
    }


def test_the_results_page_totals_the_cost_column(alice_client):
    # Scores recorded before details held a cost, or whose column was filled by the migration.
    trace = agent_trace()
    Score.objects.create(scorer_id="bias", trace=trace, status="succeeded", score=0, cost_usd=0.25)
    Score.objects.create(
        scorer_id="bias", trace=trace, span_id="1" * 16, status="succeeded", score=0, cost_usd=0.5
    )
    html = alice_client.get("/scorers/bias/results/").content.decode()
    assert '<strong class="cost">$0.75</strong>' in html


BUILT_IN_JUDGES = [
    "answer-relevancy",
    "faithfulness",
    "hallucination",
    "toxicity",
    "bias",
    "prompt-alignment",
    "answer-similarity",
    "context-relevance",
    "context-precision",
    "noise-sensitivity",
    "llm-tool-call-accuracy",
]


@pytest.mark.parametrize("scorer_id", BUILT_IN_JUDGES)
def test_every_judge_is_estimated_at_exactly_what_it_sends_given_the_assumed_answers(
    judge, scorer_id
):
    from scoring.inputs import build_scoring_input
    from scoring.scorers import registry

    trace = agent_trace(
        answer=ANSWER,
        metadata={
            "expected_output": "The order shipped. It arrives on Friday.",
            "baseline_response": "Order 1042 shipped yesterday.",
        },
    )
    data = build_scoring_input(trace.trace_id)
    scorer = registry.get(scorer_id)
    encoding = get_encoding("o200k_base")
    run = costs.judge_tokens(scorer, data, encoding)
    assert run.steps, "the judge was estimated at no call"
    judge.replies = [Reply(step["answer"]) for step in run.steps]
    scorer.score(data)
    sent = [request.body["messages"] for request in judge.requests]
    assert len(sent) == len(run.steps)
    assert run.prompt_tokens == sum(chat_tokens(messages, encoding) for messages in sent)
