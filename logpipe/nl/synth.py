"""Synthetic (question, LogQL) pairs built from our LogQL tree over real log templates.

Why: ~250 hand-written training pairs cover a few dozen question templates; the model must
also answer questions written independently of them. So we generate pairs over the
templates and labels of the Loghub logs (:mod:`logpipe.nl.loghub`): every query is built as
a syntax tree (:mod:`logpipe.logql.ast`), validated and printed by our own printer, so it is
valid LogQL by construction, and its question is one of several phrasings of the same
intent. Shapes: counts, rates, counts by a label, label filters, log listings, top-k and
distinct counts of a value extracted with ``regexp``, thresholds, unwrapped averages,
maxima and quantiles, and numeric label filters after a parser.

Every choice is drawn from a seeded ``random.Random``, so a seed gives the same pairs on
every machine. Pairs whose question, query or question group is held out are dropped
(:func:`dedupe`), so the held-out split stays unseen.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql import ast, format_query, validate
from logpipe.nl.data import Pair, Split, group_keys
from logpipe.nl.loghub import SystemLogs, TemplateInfo
from logpipe.nl.normalise import canonical

__all__ = [
    "APP_SUFFIXES",
    "RANGES",
    "SlotInfo",
    "dedupe",
    "generate",
    "generate_for_store",
    "slots_of",
]

_NS = {"m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}
RANGES: tuple[tuple[str, str], ...] = (
    ("5m", "the last 5 minutes"), ("15m", "the past 15 minutes"), ("30m", "the last 30 minutes"),
    ("1h", "the last hour"), ("1h", "the past hour"), ("6h", "the last 6 hours"),
    ("12h", "the past 12 hours"), ("24h", "the last 24 hours"), ("1d", "the past day"),
    ("7d", "the last 7 days"), ("7d", "the past week"), ("30d", "the last 30 days"),
)  # fmt: skip
APP_SUFFIXES = ("prod", "staging", "us-east", "us-west", "eu-west", "eu-central", "asia-pacific",
                "south-america", "tenant-1", "tenant-2", "tenant-3", "dc1", "blue")  # fmt: skip
_LABEL_WORDS = {"log_level": "log level", "component": "component", "hostname": "host",
                "log_file_type": "log file type"}  # fmt: skip
_STOP = {"for", "from", "to", "by", "of", "in", "at", "on", "is", "with", "the", "a", "and", "as"}
_META = set(r"\.^$|?*+()[]{}")
_IP = re.compile(r"/?\d{1,3}(?:\.\d{1,3}){3}")
_NUM = re.compile(r"-?\d+(?:\.\d+)?")


def _range_ns(text: str) -> int:
    return int(text[:-1]) * _NS[text[-1]]


def _re_escape(text: str) -> str:
    """Escape RE2 metacharacters only (Python's ``re.escape`` also escapes spaces)."""
    return "".join("\\" + c if c in _META else c for c in text)


@dataclass(frozen=True)
class SlotInfo:
    """A ``<*>`` of a template: its index, a label name for it, what its values look like,
    and the regex that captures it (after ``prefix``, the literal text before it)."""

    index: int
    name: str
    kind: str  # "ip", "number" or "text"
    prefix: str
    samples: tuple[str, ...]

    @property
    def pattern(self) -> str:
        value = {"ip": r"[\d.]+", "number": r"[\d.]+", "text": r"\S+"}[self.kind]
        return f"{_re_escape(self.prefix)}(?P<{self.name}>{value})"


def _kind(values: Sequence[str]) -> str:
    if values and all(_IP.fullmatch(v) for v in values):
        return "ip"
    if values and all(_NUM.fullmatch(v) for v in values):
        return "number"
    return "text"


def slots_of(info: TemplateInfo) -> list[SlotInfo]:
    """The template's slots that a regexp can capture unambiguously: the literal text right
    before them (its last two words) is at least 4 characters and says what follows."""
    pieces = info.template.split("<*>")
    slots: list[SlotInfo] = []
    used: set[str] = set()
    for i in range(len(pieces) - 1):
        before = pieces[i]
        words = before.split()
        prefix = " ".join(words[-2:]) + (" " if before.endswith(" ") else "")
        if len(prefix.strip()) < 4 or not re.search(r"[A-Za-z]", prefix):
            continue
        values = tuple(s[i] for s in info.samples if len(s) > i and s[i])
        if not values or any(" " in v for v in values):
            continue
        kind = _kind(values)
        word = re.sub(r"[^a-z0-9_]", "", words[-1].lower()) if words else ""
        name = word if word and word not in _STOP and not word[0].isdigit() else ""
        if kind == "ip":
            name = f"{name}_ip" if name else "ip"
        name = name or "value"
        if name in used:
            continue
        used.add(name)
        slots.append(SlotInfo(i, name, kind, prefix, values))
    return slots


def _needle(template: str) -> str | None:
    """The longest literal run of a template: what ``|=`` looks for."""
    pieces = [p.strip(" :,;=[]()'\"") for p in template.split("<*>")]
    pieces = [p for p in pieces if len(p) >= 6 and re.search(r"[A-Za-z]{3}", p)]
    return max(pieces, key=len) if pieces else None


def _values(slot: SlotInfo) -> str:
    """How a question names a slot's values: ``ip values``, or just ``values``."""
    return "values" if slot.name == "value" else f"{slot.name} values"


def _sel(app: str, extra: Iterable[tuple[str, str]] = (),
         app_label: str = "application") -> tuple[LabelMatcher, ...]:  # fmt: skip
    return (LabelMatcher(app_label, MatchOp.EQ, app),
            *(LabelMatcher(n, MatchOp.EQ, v) for n, v in extra))  # fmt: skip


def _count(log: ast.LogExpr, rng: str, op: str = "count_over_time") -> ast.RangeAggregation:
    return ast.RangeAggregation(op, ast.LogRange(log, _range_ns(rng)))


def _sum(inner: ast.MetricExpr, by: Sequence[str] = ()) -> ast.VectorAggregation:
    grouping = ast.Grouping(False, tuple(by)) if by else None
    return ast.VectorAggregation("sum", inner, grouping=grouping, grouping_first=bool(by))


class _Builder:
    """Pairs for one template of one system under one application name."""

    def __init__(self, r: random.Random, info: TemplateInfo, app: str,
                 app_label: str = "application") -> None:  # fmt: skip
        self.r, self.info, self.app, self.app_label = r, info, app, app_label
        self.needle = _needle(info.template) or ""
        self.quoted = f"'{self.needle}'"
        self.filter = ast.LineFilter("|=", (self.needle,))

    def when(self) -> tuple[str, str]:
        return self.r.choice(RANGES)

    def log(self, extra: Iterable[tuple[str, str]] = (), *stages: ast.Stage) -> ast.LogExpr:
        return ast.LogExpr(_sel(self.app, extra, self.app_label), (self.filter, *stages))

    def pick(self, *phrasings: str, **values: object) -> str:
        return self.r.choice(phrasings).format(**values)

    # -------------------------------------------------------------- shapes
    def count(self) -> tuple[str, ast.Expr]:
        rng, when = self.when()
        q = self.pick("How many {n} events were logged for {a} in {w}?",
                      "Count the {n} lines of {a} over {w}.",
                      "How often did {n} appear in {a} logs during {w}?",
                      "Number of {n} messages for application {a} in {w}?",
                      n=self.quoted, a=self.app, w=when)  # fmt: skip
        return q, _sum(_count(self.log(), rng))

    def rate(self) -> tuple[str, ast.Expr]:
        rng, when = self.when()
        q = self.pick("What is the per-second rate of {n} events for {a} over {w}?",
                      "At what rate per second are {n} lines logged by {a}, over {w}?",
                      n=self.quoted, a=self.app, w=when)  # fmt: skip
        return q, _sum(_count(self.log(), rng, "rate"))

    def by_label(self, label: str | None = None) -> tuple[str, ast.Expr] | None:
        names = sorted(self.info.label_values)
        if not names:
            return None
        label = self.r.choice(names) if label is None else label
        rng, when = self.when()
        q = self.pick("How many {n} events were logged for {a} in {w}, per {l}?",
                      "Break down the {n} lines of {a} by {l} over {w}.",
                      "Count {n} messages by {l} for application {a} in {w}.",
                      n=self.quoted, a=self.app, w=when,
                      l=_LABEL_WORDS.get(label, label))  # fmt: skip
        return q, _sum(_count(self.log(), rng), by=(label,))

    def with_label(self) -> tuple[str, ast.Expr] | None:
        choices = sorted((n, v) for n, vs in self.info.label_values.items() for v in vs)
        if not choices:
            return None
        name, value = self.r.choice(choices)
        rng, when = self.when()
        q = self.pick("How many {n} events with {l} {v} were logged for {a} in {w}?",
                      "Count the {n} lines of {a} where {l} is {v}, over {w}.",
                      n=self.quoted, a=self.app, w=when, l=_LABEL_WORDS.get(name, name),
                      v=value)  # fmt: skip
        return q, _sum(_count(self.log([(name, value)]), rng))

    def listing(self) -> tuple[str, ast.Expr]:
        q = self.pick("Show me the {n} logs of {a}.", "List all {n} lines for application {a}.",
                      "Which log lines of {a} contain {n}?", n=self.quoted, a=self.app)  # fmt: skip
        return q, self.log()

    def topk(self, slot: SlotInfo) -> tuple[str, ast.Expr]:
        rng, when = self.when()
        k = self.r.choice((1, 3, 5, 10))
        parser = ast.RegexpParser(slot.pattern)
        inner = _sum(_count(self.log((), parser), rng), by=(slot.name,))
        top = (
            "Which {s} had the most {n} events for {a} in {w}?"
            if k == 1
            else ("What are the top {k} {v} by number of {n} events for {a} in {w}?")
        )
        q = self.pick(top, "List the {k} most frequent {v} in {n} lines of {a} over {w}.",
                      k=k, s=slot.name, v=_values(slot), n=self.quoted, a=self.app,
                      w=when)  # fmt: skip
        return q, ast.VectorAggregation("topk", inner, param=float(k))

    def distinct(self, slot: SlotInfo) -> tuple[str, ast.Expr]:
        rng, when = self.when()
        parser = ast.RegexpParser(slot.pattern)
        inner = _sum(_count(self.log((), parser), rng), by=(slot.name,))
        q = self.pick("How many distinct {v} appear in {n} events of {a} in {w}?",
                      "Count the unique {v} seen in {n} lines for {a} over {w}.",
                      v=_values(slot), n=self.quoted, a=self.app, w=when)  # fmt: skip
        return q, ast.VectorAggregation("count", inner)

    def threshold(self, slot: SlotInfo) -> tuple[str, ast.Expr]:
        rng, when = self.when()
        n = self.r.choice((1, 2, 5, 10))
        parser = ast.RegexpParser(slot.pattern)
        inner = _sum(_count(self.log((), parser), rng), by=(slot.name,))
        q = self.pick("Which {v} had more than {t} {n} events for {a} in {w}?",
                      "Show each {s} with over {t} {n} lines in {a} during {w}.",
                      s=slot.name, v=_values(slot), t=n, n=self.quoted, a=self.app,
                      w=when)  # fmt: skip
        return q, ast.BinaryOp(">", inner, ast.NumberLiteral(float(n)))

    def unwrap(self, slot: SlotInfo) -> tuple[str, ast.Expr]:
        rng, when = self.when()
        op, word = self.r.choice((("avg_over_time", "average"), ("max_over_time", "maximum"),
                                  ("min_over_time", "minimum"), ("sum_over_time", "total"),
                                  ("quantile_over_time", "95th percentile")))  # fmt: skip
        log = self.log((), ast.RegexpParser(slot.pattern))
        # lines with the needle but not the value would fail the query (Loki's
        # SampleExtractionErr): skip them, as Loki's docs advise
        no_error = ast.StringFilter(LabelMatcher("__error__", MatchOp.EQ, ""))
        unwrap = ast.Unwrap(slot.name, post_filters=(no_error,))
        rng_node = ast.LogRange(log, _range_ns(rng), unwrap=unwrap)
        param = 0.95 if op == "quantile_over_time" else None
        expr: ast.MetricExpr = ast.RangeAggregation(op, rng_node, param=param)
        q = self.pick("What is the {o} {s} of {n} events for {a} over {w}?",
                      "Give the {o} {s} reported in {n} lines of {a} in {w}.",
                      o=word, s=slot.name, n=self.quoted, a=self.app, w=when)  # fmt: skip
        if self.r.random() < 0.5:
            expr = ast.VectorAggregation("max" if op == "max_over_time" else "avg", expr)
        return q, expr

    def numeric_filter(self, slot: SlotInfo) -> tuple[str, ast.Expr]:
        distinct = sorted({float(v) for v in slot.samples if _NUM.fullmatch(v)})
        op, word = self.r.choice(((">", "greater than"), (">=", "at least"), ("<", "below")))
        if len(distinct) == 1:
            op, word = ">=", "at least"
        # a cut that some sampled lines pass: below the largest value, above the smallest
        cut = distinct[len(distinct) // 2] if op == "<" else distinct[(len(distinct) - 1) // 2]
        stage = ast.LabelFilterStage(ast.NumberFilter(slot.name, op, cut))
        log = self.log((), ast.RegexpParser(slot.pattern), stage)
        value = f"{cut:g}"
        q = self.pick("Show the {n} lines of {a} where {s} is {o} {v}.",
                      "List {n} events for {a} with a {s} {o} {v}.",
                      n=self.quoted, a=self.app, s=slot.name, o=word, v=value)  # fmt: skip
        return q, log

    def all_shapes(self, every_label: bool = False) -> list[tuple[str, ast.Expr]]:
        """Each shape once (counts by one label drawn at random; by every label with
        ``every_label``)."""
        if not self.needle:
            return []
        out = [self.count(), self.rate(), self.listing()]
        by = [self.by_label(n) for n in sorted(self.info.label_values)] if every_label else [
            self.by_label()]  # fmt: skip
        out += [x for x in (*by, self.with_label()) if x is not None]
        for slot in slots_of(self.info):
            if slot.kind == "number":
                out += [self.unwrap(slot), self.numeric_filter(slot)]
            else:
                out += [self.topk(slot), self.distinct(slot), self.threshold(slot)]
        return out


def generate(
    systems: Sequence[SystemLogs],
    *,
    seed: int = 0,
    apps_per_template: int = 2,
    app_names: Mapping[str, Sequence[str]] | None = None,
    max_templates: int | None = None,
) -> list[Pair]:
    """Synthetic pairs over the templates of ``systems`` (the ``max_templates`` most frequent
    of each, when given), each under ``apps_per_template`` application names
    (``<family>-<suffix>``, or drawn from ``app_names[family]``)."""
    r = random.Random(seed)
    pairs: list[Pair] = []
    seen: set[str] = set()
    for logs in systems:
        family = logs.spec.family
        names = list(app_names.get(family, ())) if app_names else []
        names = names or [f"{family}-{s}" for s in APP_SUFFIXES]
        templates = logs.templates
        if max_templates is not None:
            ranked = sorted(templates, key=lambda t: -t.count)[:max_templates]
            templates = [t for t in templates if t in ranked]
        for info in templates:
            for app in r.sample(names, min(apps_per_template, len(names))):
                pairs += _pairs(_Builder(r, info, app), family, seen)
    return pairs


def _pairs(builder: _Builder, family: str, seen: set[str], every_label: bool = False) -> list[Pair]:
    """The builder's pairs, validated and normalised, without questions already ``seen``."""
    out: list[Pair] = []
    for question, built in builder.all_shapes(every_label):
        validate(built)
        expr = canonical(built)
        key = " ".join(question.lower().split())
        if key in seen:
            continue
        seen.add(key)
        out.append(Pair(question, format_query(expr), expr, family, 0, "synth"))
    return out


def generate_for_store(
    templates: Mapping[str, Sequence[TemplateInfo]],
    *,
    app_label: str = "application",
    seed: int = 0,
    rounds: int = 3,
) -> list[Pair]:
    """Pairs over a store's own templates: ``templates`` maps each value of ``app_label``
    (the label that names an application in that store) to the templates seen in its
    streams. The family of a pair is its application up to the first ``-``, as in
    :func:`~logpipe.nl.data.family_of`. Counts come grouped by every label a template was
    seen with ("per host", "per level"): a store has few labels, and they are what people
    break counts down by. Each template is phrased ``rounds`` times (other phrasings and
    windows, repeats dropped), so retrieval finds the phrasing nearest a question's."""
    r = random.Random(seed)
    pairs: list[Pair] = []
    seen: set[str] = set()
    for app in sorted(templates):
        family = app.split("-", 1)[0].lower()
        for info in templates[app]:
            for _ in range(rounds):  # each round draws other phrasings and windows
                pairs += _pairs(_Builder(r, info, app, app_label), family, seen, every_label=True)
    return pairs


def dedupe(pairs: Sequence[Pair], split: Split) -> list[Pair]:
    """``pairs`` without any whose question or query is held out, or that falls into the
    group of a held-out pair (same masked question or query skeleton, see
    :func:`~logpipe.nl.data.group_keys`)."""
    held_questions = {" ".join(p.question.lower().split()) for p in split.heldout}
    held_queries = {p.query for p in split.heldout}
    keys = group_keys([*split.heldout, *pairs])
    held_keys = set(keys[: len(split.heldout)])  # groups joined with a held-out pair
    return [
        p
        for p, key in zip(pairs, keys[len(split.heldout) :], strict=True)
        if " ".join(p.question.lower().split()) not in held_questions
        and p.query not in held_queries
        and key not in held_keys
    ]
