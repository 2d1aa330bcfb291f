"""Checking (and repairing) a template proposed by a language model before anyone sees it.

Why a checker at all: a model's reply is untrusted text. A small local model drifts
(repeats a word, paraphrases, drops a clause, answers with a whole sentence), and a hosted
one may be anyone's. A template that does not match its own lines would lose their values
in the archive and scramble template ids, so nothing a model says is used unless it passes
:func:`check_template`:

1. **Normalise**: one line, Loghub-2.0 conventions (:func:`loghub_postprocess`), so the
   same answer written twice is the same template; common wrappers (quotes, a
   ``Template:`` prefix, backticks) are stripped first.
2. **Sane text**: not empty, not over-long, no control characters, and not all variables
   when the statistical template has constant words.
3. **Matches every line of its batch**, as an anchored pattern (``<*>`` matches any run).
4. **Keeps the batch's constant text**: most of the statistical template's constant
   words must still be constants, and the answer must generalise the statistical template
   one token at a time (a model may turn a constant that only looked constant into a
   variable -- a user name seen once -- but not replace a clause by ``<*>``, nor make
   constant what the group has seen vary).

A reply that fails is **repaired** where a cheap rule can: token by token against the
statistical template (same token count: each position takes the model's ``<*>`` where the
model saw a variable and the statistical text elsewhere -- "snap to the statistical
template's constants"). A repair is checked again; if it fails too, the caller keeps the
statistical template. The result says which of the three happened, for the counters.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from logpipe.parsing.masking import VAR
from logpipe.parsing.params import template_regex
from logpipe.parsing.postprocess import loghub_postprocess

__all__ = [
    "MAX_TEMPLATE_CHARS",
    "CheckResult",
    "Verdict",
    "check_template",
    "clean_reply",
    "constant_words",
    "keeps_constants",
    "matches_all",
]

#: Longer replies are rambling, not a template of one log line.
MAX_TEMPLATE_CHARS = 4096
#: Share of the statistical template's constant words an answer must keep as constants.
MIN_KEPT_CONSTANTS = 0.5

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_PREFIX = re.compile(r"^(?:template|log template|output|answer)\s*:\s*", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]{2,}")


class Verdict(enum.StrEnum):
    """What became of a model's answer."""

    ACCEPTED = "accepted"
    REPAIRED = "repaired"
    REJECTED = "rejected"


@dataclass(frozen=True)
class CheckResult:
    """The template to use (the statistical one when rejected) and why."""

    template: str
    verdict: Verdict
    reason: str = ""


def clean_reply(reply: str) -> str:
    """The first non-empty line of ``reply`` without wrappers, in Loghub conventions."""
    line = next((ln for ln in reply.splitlines() if ln.strip()), "").strip()
    line = _PREFIX.sub("", line)
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "`'\"":
        line = line[1:-1].strip()
    return loghub_postprocess(line)


def constant_words(template: str) -> list[str]:
    """The alphabetic words of ``template`` outside its variables (what it says)."""
    return [w for piece in template.split(VAR) for w in _WORD.findall(piece)]


def matches_all(template: str, lines: Sequence[str]) -> bool:
    """Whether the anchored pattern of ``template`` matches each of ``lines`` in full."""
    pattern = template_regex(template)
    return all(pattern.fullmatch(line) is not None for line in lines)


def keeps_constants(template: str, reference: str) -> bool:
    """Whether ``template`` keeps at least half of ``reference``'s constant words (as
    constants, counted with repeats)."""
    ref_words = constant_words(reference)
    if not ref_words:
        return True
    remaining = constant_words(template)
    kept = 0
    for word in ref_words:
        if word in remaining:
            remaining.remove(word)
            kept += 1
    return kept >= MIN_KEPT_CONSTANTS * len(ref_words)


def _problem(template: str, lines: Sequence[str], reference: str) -> str:
    """Why ``template`` is not acceptable for ``lines`` ("" when it is)."""
    if not template:
        return "empty"
    if len(template) > MAX_TEMPLATE_CHARS:
        return "too long"
    if _CONTROL.search(template):
        return "control characters"
    ref_words = constant_words(reference)
    words = constant_words(template)
    if ref_words and not words:
        return "no constant text"
    if not matches_all(template, lines):
        return "does not match its lines"
    if not keeps_constants(template, reference):
        return "drops the constant text"
    return _generalisation_problem(template, reference)


def _generalisation_problem(template: str, reference: str) -> str:
    """Why ``template`` is not a one-token-at-a-time generalisation of ``reference``.

    The statistical template has seen the whole group, the batch only a few lines: an
    answer more specific than it (a constant where the group varies) would not fit the
    group, and a variable that swallows several constant words (``from <*>`` for ``from
    <*> port <*> ssh2``) drops text the batch shares. Both are refused.
    """
    aligned = template_regex(template).fullmatch(reference)
    if aligned is None:
        return "more specific than the statistical template"
    for covered in aligned.groups():
        words = [t for t in covered.split() if _WORD.search(t.replace(VAR, ""))]
        if len(words) > 1:
            return "swallows constant text"
    return ""


def _snap(answer: str, reference: str) -> str | None:
    """The statistical template with the answer's variables, position by position.

    Only when both have the same number of whitespace tokens. Each position keeps the
    reference's token unless the answer's token has a variable that covers it (``<*>`` or
    ``user=<*>`` over ``user=root``: the one decision a model is asked to make); all other
    text comes from the reference, so a paraphrase or a dropped character is undone.
    """
    a_tokens, r_tokens = answer.split(), reference.split()
    if len(a_tokens) != len(r_tokens):
        return None
    out = [a if VAR in a and VAR not in r and template_regex(a).fullmatch(r) else r
           for a, r in zip(a_tokens, r_tokens, strict=True)]  # fmt: skip
    return loghub_postprocess(" ".join(out))


def check_template(reply: str, lines: Sequence[str], reference: str) -> CheckResult:
    """Check a model's ``reply`` for ``lines`` against the statistical ``reference``.

    ``reference`` must itself match ``lines`` (it is what the caller falls back to).
    """
    answer = clean_reply(reply)
    problem = _problem(answer, lines, reference)
    if not problem:
        return CheckResult(answer, Verdict.ACCEPTED)
    repaired = _snap(answer, reference) if answer else None
    if repaired is not None and repaired != reference and not _problem(repaired, lines, reference):
        return CheckResult(repaired, Verdict.REPAIRED, problem)
    return CheckResult(reference, Verdict.REJECTED, problem)
