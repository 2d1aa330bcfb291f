"""When has a model written a whole query? The early stop of generation.

Every generated token costs ~60 ms on a 2-core CPU, and an untuned model rarely ends its
turn: it writes the query and then explains it, or starts the next question. So a reply is
cut as soon as it holds a complete query: some text, with its brackets balanced and no
string left open, followed by a line break whose next line does not continue the query
(queries may span lines: ``{app="x"}`` then ``|= "y"`` on the next). A blank line, a next
``Q:`` or a closing code fence ends it too; the end-of-turn token is the generator's to see.

Pure text logic, so it is tested without a model, and the same rule serves any generator.
"""

from __future__ import annotations

import re

from logpipe.nl.repair import strings_masked

__all__ = ["balanced", "reply_end"]

_CONTINUES = ("|", ")", "]", "}", "[", "+", "-", "*", "/", "%", "^", "=", "!", "<", ">", ",")
_KEYWORDS = ("and", "or", "unless", "by", "without", "offset", "on", "ignoring",
             "group_left", "group_right", "bool")  # fmt: skip
_WORD = re.compile(r"[A-Za-z_]+")
_ENDS = re.compile(r"\n[ \t]*\n|\n[ \t]*(?:Q|Question)\s*:|```")


def balanced(text: str) -> bool:
    """No string left open, and every ``( [ {`` closed (brackets in strings ignored)."""
    masked = strings_masked(text)
    if sum(masked.count(q) for q in '"`') % 2:
        return False
    depth = 0
    for ch in masked:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
    return depth <= 0


def _continues(rest: str) -> bool | None:
    """Whether the line after a complete query continues it; None: too early to say."""
    rest = rest.lstrip(" \t")
    if not rest:
        return None
    if rest.startswith(_CONTINUES):
        return True
    word = _WORD.match(rest)
    if word is None:
        return False
    if word.end() == len(rest) and any(k.startswith(word.group()) for k in _KEYWORDS):
        return None  # "b..." may yet be "by"
    return word.group() in _KEYWORDS


def reply_end(text: str) -> int | None:
    """Where the reply ``text`` ends, once it holds a complete query (cut it there); None
    while the query may still be growing."""
    start = 0
    head = text.lstrip()
    if head.startswith("```"):  # an opening fence: the query starts on the next line
        newline = text.find("\n", len(text) - len(head))
        if newline < 0:
            return None
        start = newline + 1
    if not text[start:].strip():
        return None
    marked = next((m.start() for m in _ENDS.finditer(text, start)
                   if text[start : m.start()].strip()), None)  # fmt: skip
    at = text.find("\n", start)
    while at >= 0 and (marked is None or at < marked):
        query = text[start:at]
        if query.strip() and balanced(query):
            more = _continues(text[at + 1 :])
            if more is None:
                return marked
            if not more:
                return at
        at = text.find("\n", at + 1)
    return marked
