"""Extract the variable values of a message under its template.

Why a regex per template: the miner keeps templates, not per-line positions, and a template
only generalises over time, so values are read off the final template. ``<*>`` matches
lazily, runs of whitespace in the template match any whitespace run in the message, and the
match is anchored at both ends; compiled patterns are cached per template.
"""

from __future__ import annotations

import re
from functools import lru_cache

from logpipe.parsing.masking import VAR

__all__ = ["extract_params", "template_regex"]

_WS = re.compile(r"\s+")


@lru_cache(maxsize=8192)
def template_regex(template: str) -> re.Pattern[str]:
    """The anchored pattern that matches messages of ``template`` and captures its values."""
    pieces = template.split(VAR)
    body = "(.*?)".join(_WS.sub(r"\\s+", re.escape(p).replace("\\ ", " ")) for p in pieces)
    return re.compile(r"\s*" + body + r"\s*", re.DOTALL)


def extract_params(template: str, content: str) -> list[str]:
    """The values of ``template``'s variables in ``content``; ``[]`` if it does not fit."""
    if VAR not in template:
        return []
    m = template_regex(template).fullmatch(content)
    if m is None:
        return []
    return list(m.groups())
