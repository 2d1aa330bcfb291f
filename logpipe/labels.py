"""Label sets and label matchers: how streams are named and selected (Loki's model).

A stream is identified by its label set, e.g. ``{app="hdfs", host="n1"}``. A selector's
matchers (``=``, ``!=``, ``=~``, ``!~``) pick streams with Prometheus semantics, which Loki
shares:

* a missing label reads as the empty string, so ``{env=""}`` matches streams without
  ``env`` and ``{env!=""}`` requires it;
* regular expressions are RE2 and fully anchored: ``{app=~"hd"}`` does not match ``hdfs``.

Everything that names or selects streams (the store, the LogQL engine, the push API, the CLI's
``--labels``) uses these types, so the rules live in one place.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.quoting import QuoteError, go_quote, go_unquote

__all__ = [
    "LABEL_NAME",
    "LabelError",
    "LabelMatcher",
    "MatchOp",
    "format_labels",
    "match_all",
    "parse_labels",
    "stream_id",
]

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class LabelError(ValueError):
    """A malformed label set or matcher; ``offset`` is the character where it goes wrong."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@lru_cache(maxsize=1024)
def _check_regex(pattern: str) -> str:
    """``pattern`` anchored as Loki anchors it, after RE2 accepted it (else LabelError)."""
    anchored = f"^(?:{pattern})$"
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern=anchored)  # compiles it
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LabelError(f"invalid regular expression {go_quote(pattern)}: {exc}") from None
    return anchored


@dataclass(frozen=True)
class LabelMatcher:
    """One ``name op "value"`` term of a stream selector."""

    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if not LABEL_NAME.fullmatch(self.name):
            raise LabelError(f"invalid label name {self.name!r}")
        if self.op in (MatchOp.RE, MatchOp.NRE):
            _check_regex(self.value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a stream with ``labels`` satisfies this matcher."""
        return bool(self.match_values([labels.get(self.name, "")])[0])

    def match_values(self, values: Iterable[str]) -> list[bool]:
        """The matcher over many values of this label at once (RE2, vectorised)."""
        column = pa.array(list(values), pa.string())
        if self.op is MatchOp.EQ:
            result = pc.equal(column, self.value)
        elif self.op is MatchOp.NE:
            result = pc.not_equal(column, self.value)
        else:
            result = pc.match_substring_regex(column, pattern=_check_regex(self.value))
            if self.op is MatchOp.NRE:
                result = pc.invert(result)
        return [bool(v) for v in result.to_pylist()]

    def matches_empty(self) -> bool:
        """Whether the matcher accepts a stream without this label (Loki rejects selectors
        whose matchers all do: they would select every stream)."""
        return self.matches({})

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{go_quote(self.value)}"


def match_all(matchers: Iterable[LabelMatcher], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy every matcher (a selector's matchers are ANDed)."""
    return all(m.matches(labels) for m in matchers)


def format_labels(labels: Mapping[str, str]) -> str:
    """Loki's text form of a label set: ``{a="1", b="2"}``, names sorted, values Go-quoted."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


def stream_id(labels: Mapping[str, str]) -> str:
    """A stable id for a label set (16 hex digits of SHA-256 of its canonical text)."""
    return hashlib.sha256(format_labels(labels).encode("utf-8")).hexdigest()[:16]


_TOKEN = re.compile(
    r'\s*(?:(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)|(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<p>[{}=,]))'
)


def parse_labels(text: str) -> dict[str, str]:
    """A label set written as ``{a="1", b="2"}`` (the braces are optional; ``{}`` is empty).

    Raises :class:`LabelError` with the offset (into ``text``) of the offending character.
    """
    lead = len(text) - len(text.lstrip())
    src = text.strip()
    if src.startswith("{"):
        if not src.endswith("}"):
            raise LabelError("label set opens with { but does not end with }", lead + len(src))
        src = src[1:-1]
        lead += 1
    labels: dict[str, str] = {}
    pos = 0

    def skip(at: int) -> int:
        while at < len(src) and src[at].isspace():
            at += 1
        return at

    while True:
        pos = skip(pos)
        if pos >= len(src):
            return labels
        m = _TOKEN.match(src, pos)
        if m is None or m.group("name") is None:
            raise LabelError("expected a label name", lead + pos)
        name, name_at = m.group("name"), m.start("name")
        pos = skip(m.end())
        m = _TOKEN.match(src, pos)
        if m is None or m.group("p") != "=":
            raise LabelError(f"expected = after label {name}", lead + pos)
        pos = skip(m.end())
        m = _TOKEN.match(src, pos)
        if m is None or m.group("str") is None:
            raise LabelError(f'expected a "quoted" value for label {name}', lead + pos)
        try:
            value = go_unquote(m.group("str"))
        except QuoteError as exc:
            raise LabelError(str(exc), lead + m.start("str") + exc.offset) from None
        if name in labels:
            raise LabelError(f"label {name} appears twice", lead + name_at)
        labels[name] = value
        pos = skip(m.end())
        if pos >= len(src):
            return labels
        if src[pos] != ",":
            raise LabelError("expected , between labels", lead + pos)
        pos += 1
