"""A tiny stand-in framer for tests of the I/O path (the real one lives in logpipe.formats).

It understands Loghub format strings the way Loghub's own tools do (``<Name>`` fields, literal
parts taken as regex, runs of spaces matching any whitespace), which is all the I/O tests
need, and frames whole Arrow arrays with RE2 like the real framer does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from logpipe.formats import Framed

FORMAT = "<Date> <Time> <Level> <Component>: <Content>"
FIELDS = ("Date", "Time", "Level", "Component")


class FakeFramer:
    def __init__(self, spec: str = FORMAT) -> None:
        self.spec = spec
        parts = re.split(r"(<[^<>]+>)", spec)
        regex = ""
        names: list[str] = []
        for part in parts:
            if part.startswith("<") and part.endswith(">"):
                name = part[1:-1]
                names.append(name)
                regex += f"(?P<{name}>.*)" if name == "Content" else f"(?P<{name}>.*?)"
            else:  # literal parts are regex already (Loghub style: "\\[<Pid>\\]")
                # RE2's extract_regex wants every group named: make plain groups non-capturing
                literal = re.sub(r"(?<!\\)\((?!\?)", "(?:", part)
                regex += re.sub(" +", r"\\s+", literal)
        self.regex = "^" + regex + "$"
        self._names = tuple(n for n in names if n != "Content")

    @property
    def name(self) -> str:
        return self.spec

    @property
    def field_names(self) -> tuple[str, ...]:
        return self._names

    def frame(self, lines: pa.Array) -> Framed:
        extracted = pc.extract_regex(lines, self.regex)
        matched = pc.is_valid(extracted)
        fields = {
            name: pc.if_else(matched, extracted.field(name), pa.scalar(None, pa.string()))
            for name in self._names
        }
        content = pc.if_else(matched, extracted.field("Content"), lines)
        return Framed(fields=fields, content=content, matched=matched)


def fake_resolve_framer(
    log_format: str | None, preset_name: str | None, sample: Sequence[str]
) -> FakeFramer:
    return FakeFramer(log_format or FORMAT)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``logpipe parse`` use the fake framer."""
    import logpipe.formats

    monkeypatch.setattr(logpipe.formats, "resolve_framer", fake_resolve_framer)
