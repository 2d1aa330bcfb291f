from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.parsing import TemplateMiner
from logpipe.parsing.masking import VAR
from logpipe.parsing.params import extract_params

lines = st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=30)


@given(lines)
@settings(max_examples=150, deadline=None)
def test_any_text_gets_a_cluster_and_is_deterministic(batch: list[str]) -> None:
    a, b = TemplateMiner(), TemplateMiner()
    ids = a.add_many(batch)
    assert ids == b.add_many(batch)
    assert len(ids) == len(batch)
    assert sum(c.size for c in a.clusters()) == len(batch)


@given(lines)
@settings(max_examples=100, deadline=None)
def test_state_round_trip_preserves_behaviour(batch: list[str]) -> None:
    a = TemplateMiner()
    a.add_many(batch)
    b = TemplateMiner.from_dict(a.to_dict())
    assert b.clusters() == a.clusters()
    assert b.add_many(batch) == a.add_many(batch)


@given(st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=6))
def test_params_fill_the_template_back_to_the_message(words: list[str]) -> None:
    message = " ".join(words)
    template = " ".join([VAR, *words[1:]])
    params = extract_params(template, message)
    assert params == [words[0]]
