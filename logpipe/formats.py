"""PLACEHOLDER: log formats (header framing). The real module keeps exactly this interface.

A *framer* splits raw lines into header fields and the message body (``Content``) that the
template miner sees. Framers work on whole Arrow arrays so that the header regex runs in
Arrow's C++ kernels (RE2), not per line in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

__all__ = [
    "PRESETS",
    "Framed",
    "Framer",
    "LogFormat",
    "compile_format",
    "detect_framer",
    "preset",
    "resolve_framer",
]


@dataclass(frozen=True)
class Framed:
    """The result of framing a batch of lines.

    ``fields`` maps each header field name (in format order, ``Content`` excluded) to a
    string array, null where the line did not match. ``content`` is the message body, or the
    whole line where it did not match. ``matched`` is False for lines that did not match.
    """

    fields: dict[str, pa.Array]
    content: pa.Array
    matched: pa.Array


class Framer(Protocol):
    """Anything that frames lines: a Loghub format string, JSON lines, logfmt, syslog."""

    @property
    def name(self) -> str: ...

    @property
    def field_names(self) -> tuple[str, ...]: ...

    def frame(self, lines: pa.Array) -> Framed: ...


PRESETS: Mapping[str, str] = {}


@dataclass(frozen=True)
class LogFormat:
    """A compiled Loghub-style format string."""

    spec: str
    field_names: tuple[str, ...]
    regex: str

    @property
    def name(self) -> str:
        return self.spec

    def frame(self, lines: pa.Array) -> Framed:
        raise NotImplementedError


def compile_format(spec: str) -> LogFormat:
    raise NotImplementedError


def preset(name: str) -> LogFormat:
    raise NotImplementedError


def detect_framer(sample: Sequence[str]) -> Framer:
    raise NotImplementedError


def resolve_framer(
    log_format: str | None, preset_name: str | None, sample: Sequence[str]
) -> Framer:
    raise NotImplementedError
