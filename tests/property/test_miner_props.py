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


@given(
    st.lists(
        st.tuples(
            st.integers(1, 4), st.text(alphabet="ab 1.:(x)[]\t\v\x1f\u00a0\u2003\n", max_size=20)
        ),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=200, deadline=None)
def test_batch_params_equal_per_line_params(rows: list[tuple[int, str]]) -> None:
    import pyarrow as pa

    import logpipe.parsing.params as params_mod
    from logpipe.parsing.params import extract_params_batch

    templates: dict[int, str | None] = {1: "a <*> b", 2: "<*>:<*>", 3: "(<*>) [x]", 4: None}
    ids = pa.array([r[0] for r in rows], pa.int64())
    content = pa.array([r[1] for r in rows], pa.string())
    got = extract_params_batch(templates, ids, content).to_pylist()
    # the same through the RE2 kernel path that large groups take
    saved = params_mod._SMALL_GROUP
    params_mod._SMALL_GROUP = 0
    try:
        via_kernels = extract_params_batch(templates, ids, content).to_pylist()
    finally:
        params_mod._SMALL_GROUP = saved
    expected = [
        extract_params(t, text) if (t := templates[cid]) is not None else [] for cid, text in rows
    ]
    assert got == expected
    assert via_kernels == expected


_WORDS = st.sampled_from(
    ["12", "-5", "3.14", "1.2.3.4", "host-a", "x", "blk_-77", "/a/1", "http://h:80", "HTTP/1.1",
     "0x1f", "Jun", "<5>", "(7)", "=", ":", ",", "5.", "a=1", "[9]", "node-7:50010", "\"GET",
     "a.b:-1", "1-0:1.0", "h.x", "7", "blk_-1234", "blk_12", "ab_123x", "/x/y/", "/a", "//h",
     "/10.0.0.1:50010", "~/a", "a_-12", "/v?x=1", "http://h/a?b=2",
     "onExtend:123", "a_b:12", "x.y:12", "12:30:01", "a-1:30", "k:-3.5", "1.2:30", "1.2:30-5",
     "12:x", "1:2:3:4", "1.2:+5", "-", "_", "."]
)  # fmt: skip


@given(
    st.lists(
        st.tuples(
            _WORDS,
            st.sampled_from(
                [
                    "",
                    " ",
                    "  ",
                    ":",
                    ",",
                    "\t",
                    "=",
                    "-",
                    ".",
                    "/",
                    "_",
                    "(",
                    "\v",
                    "\u00a0",
                    "\x1f",
                ]
            ),
        ),
        max_size=12,
    )
)
@settings(max_examples=1500, deadline=None)
def test_premask_never_changes_what_masking_sees(parts: list[tuple[str, str]]) -> None:
    import pyarrow as pa

    from logpipe.archive.codec import _line_shapes
    from logpipe.parsing.masking import mask_content, premask

    text = "".join(w + sep for w, sep in parts)
    pre = premask(pa.array([text])).to_pylist()[0]
    assert mask_content(pre) == mask_content(text)
    # the archive groups lines by the whitespace layout of their premasked form
    layout_pre, layout_text = _line_shapes(pa.array([pre, text])).to_pylist()
    assert layout_pre == layout_text


_TEMPLATE_TOKENS = st.lists(
    st.sampled_from(["a", "b", "<*>", "x=<*>", "<*>:<*>", "(<*>)", "<*>,", "a<*>b", "[<*>]"]),
    min_size=1,
    max_size=5,
)


@given(_TEMPLATE_TOKENS, st.text(alphabet="ab x=:(),[]1", max_size=24))
@settings(max_examples=1500, deadline=None)
def test_token_alignment_agrees_with_the_template_regex(tokens: list[str], content: str) -> None:
    from logpipe.parsing.params import _params_by_tokens, _template_tokens, template_regex

    template = " ".join(tokens)
    quick = _params_by_tokens(_template_tokens(template), content)
    match = template_regex(template).fullmatch(content)
    if quick is not None:
        assert match is not None
        assert quick == list(match.groups())


@given(
    _TEMPLATE_TOKENS,
    st.lists(st.text(alphabet="ab:x1,()=[]", max_size=4), min_size=12, max_size=12),
    st.sampled_from([" ", "  ", "\t"]),
)
@settings(max_examples=1500, deadline=None)
def test_token_alignment_on_filled_templates(tokens: list[str], fills: list[str], gap: str) -> None:
    from logpipe.parsing.params import _params_by_tokens, _template_tokens, template_regex

    template = " ".join(tokens)
    values = iter(fills)
    content = gap.join(
        "".join(
            piece if i == 0 else next(values) + piece for i, piece in enumerate(token.split(VAR))
        )
        for token in tokens
    )
    quick = _params_by_tokens(_template_tokens(template), content)
    match = template_regex(template).fullmatch(content)
    assert match is not None  # the content was made from the template
    if quick is not None:
        assert quick == list(match.groups())
