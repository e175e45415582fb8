"""Tree order of a trace's spans: pure ordering, and the tree kept for huge traces."""

import pytest

from observability import spantree
from observability.services import ingest_spans
from observability.spantree import tree_order
from tests.factories import span, wide_trace


def test_children_follow_their_parent_and_siblings_keep_their_start_order():
    rows = [("r", None), ("a", "r"), ("b", "r"), ("b1", "b"), ("a1", "a")]
    tree = tree_order(rows)
    assert tree.span_ids == ["r", "a", "a1", "b", "b1"]
    assert tree.depths == [0, 1, 2, 1, 2]
    assert tree.page(1, 2) == [("a", 1), ("a1", 2)]
    assert (tree.position("b1"), tree.position("zz"), tree.position(None)) == (4, None, None)
    assert tree.earliest == "r"


def test_spans_whose_parent_is_missing_or_themselves_are_roots():
    tree = tree_order([("a", "gone"), ("b", "b"), ("c", "a")])
    assert list(zip(tree.span_ids, tree.depths, strict=True)) == [("a", 0), ("c", 1), ("b", 0)]


def test_a_parent_cycle_is_shown_from_its_earliest_span():
    tree = tree_order([("r", None), ("x", "y"), ("y", "x"), ("z", "y")])
    assert tree.span_ids == ["r", "x", "y", "z"]
    assert tree.depths == [0, 0, 1, 2]


def test_a_chain_far_deeper_than_the_recursion_limit_is_ordered():
    rows = [(f"{n:016x}", f"{n - 1:016x}" if n else None) for n in range(50_000)]
    tree = tree_order(rows)
    assert tree.depths[-1] == 49_999
    assert tree.position(f"{49_999:016x}") == 49_999


def test_a_match_across_two_ids_is_not_taken_for_a_span():
    ids = ["00000000000000ab", "cd00000000000000", "abcd000000000000"]
    tree = tree_order([(i, None) for i in ids])
    assert tree.position("abcd000000000000") == 2
    assert tree.page(0, 10) == [(ids[0], 0), (ids[1], 0), (ids[2], 0)]


@pytest.mark.django_db
def test_a_kept_tree_is_read_once_and_refreshed_when_a_span_arrives(
    alice_client, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(spantree, "CACHE_FROM_SPANS", 10)
    trace = wide_trace(20)
    url = f"/traces/{trace.trace_id}/"
    # The page's fixed 13 queries (see tests/test_pages_traces.py), the span tree among them.
    with django_assert_num_queries(13):
        alice_client.get(url)
    # Kept: no span tree query the second time.
    with django_assert_num_queries(12):
        assert alice_client.get(url).content.decode().count('class="span-row') == 21
    ingest_spans([span(trace.trace_id, parent_span_id=trace.root_span_id, name="late arrival")])
    with django_assert_num_queries(13):
        html = alice_client.get(url).content.decode()
    assert html.count('class="span-row') == 22 and "late arrival" in html
