"""Properties of framing that must hold for every input, not just the examples."""

from __future__ import annotations

import json
import re

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.formats import JsonFramer, LogfmtFramer, PlainFramer, compile_format, preset

# Lines never contain "\n" (readers split on it). Other characters are fair game.
any_line = st.text(st.characters(codec="utf-8", blacklist_characters="\n"), max_size=60)

# ASCII-only lines over the characters that steer the Linux/Mac formats (spaces, brackets,
# colons, parentheses). ASCII because RE2's \s and Python's differ beyond it (Python's also
# matches \v, \x1c-\x1f and Unicode spaces), which is documented, not a property.
steering_line = st.text(st.sampled_from(list("ab1 :[]()\t")), max_size=40)

# Header values without whitespace or the separators of the format under test.
token = st.text(st.sampled_from(list("abcXYZ019._-/$")), min_size=1, max_size=12)
# A non-empty message: with an empty one, "comp: " is stripped to "comp:" and no longer fits
# ": <Content>" (exactly as in Loghub, which drops such lines).
message = (
    st.text(st.characters(codec="utf-8", blacklist_characters="\n\r"), min_size=1, max_size=40)
    .map(str.strip)
    .filter(bool)
)


@given(st.lists(any_line, max_size=20))
def test_plain_framer_content_is_the_line(lines: list[str]) -> None:
    framed = PlainFramer().frame(pa.array(lines, pa.string()))
    assert framed.content.to_pylist() == [line.rstrip("\r") for line in lines]
    assert all(framed.matched.to_pylist())
    unterminated = [line for line in lines if not line.endswith("\r")]
    framed = PlainFramer().frame(pa.array(unterminated, pa.string()))
    assert framed.content.to_pylist() == unterminated


@given(st.lists(any_line, max_size=20))
def test_unmatched_lines_keep_their_text(lines: list[str]) -> None:
    framed = compile_format("<A> <B>: <Content>").frame(pa.array(lines, pa.string()))
    for line, content, matched in zip(
        lines, framed.content.to_pylist(), framed.matched.to_pylist(), strict=True
    ):
        if not matched:
            assert content == line.rstrip("\r\n")


@settings(max_examples=300)
@given(st.lists(steering_line, min_size=1, max_size=10), st.sampled_from(["Linux", "Mac"]))
def test_re2_framing_equals_python_re_on_the_stripped_line(lines: list[str], system: str) -> None:
    """The same regex in RE2 (which frames) and Python re (Loghub's tool) agrees."""
    fmt = preset(system)
    pattern = re.compile(fmt.regex)
    framed = fmt.frame(pa.array(lines, pa.string()))
    columns = {name: col.to_pylist() for name, col in framed.fields.items()}
    for i, line in enumerate(lines):
        match = pattern.match(line.strip())
        assert framed.matched[i].as_py() == (match is not None)
        if match is None:
            continue
        assert framed.content[i].as_py() == match.group("Content")
        for name, group in zip(fmt.field_names, fmt.group_names, strict=True):
            assert columns[name][i] == (match.group(group) or "")


@given(token, token, st.sampled_from(["INFO", "WARN", "ERROR"]), token, message)
def test_spark_style_lines_round_trip(
    date: str, time: str, level: str, component: str, body: str
) -> None:
    line = f"{date} {time} {level} {component}: {body}"
    framed = compile_format("<Date> <Time> <Level> <Component>: <Content>").frame(pa.array([line]))
    assert framed.matched[0].as_py()
    assert {k: v[0].as_py() for k, v in framed.fields.items()} == {
        "Date": date,
        "Time": time,
        "Level": level,
        "Component": component,
    }
    assert framed.content[0].as_py() == body


keys = st.text(st.sampled_from(list("abcdefgh_.")), min_size=1, max_size=8)


@given(st.dictionaries(keys, st.text(max_size=20), max_size=5), st.text(max_size=30))
def test_logfmt_round_trip(fields: dict[str, str], body: str) -> None:
    fields = {k: v for k, v in fields.items() if k not in ("msg", "message")}

    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    line = " ".join([f"msg={quote(body)}", *(f"{k}={quote(v)}" for k, v in fields.items())])
    framer = LogfmtFramer(field_names=tuple(fields))
    framed = framer.frame(pa.array([line]))
    assert framed.matched[0].as_py()
    assert framed.content[0].as_py() == body
    assert {k: v[0].as_py() for k, v in framed.fields.items()} == fields


@given(
    st.dictionaries(keys, st.one_of(st.text(max_size=10), st.integers()), max_size=5),
    st.text(max_size=30),
)
def test_json_round_trip(fields: dict[str, str | int], body: str) -> None:
    fields = {k: v for k, v in fields.items() if k != "message"}
    line = json.dumps({"message": body, **fields})
    framed = JsonFramer(field_names=tuple(fields)).frame(pa.array([line]))
    assert framed.matched[0].as_py()
    assert framed.content[0].as_py() == body
    assert {k: v[0].as_py() for k, v in framed.fields.items()} == {
        k: str(v) for k, v in fields.items()
    }
