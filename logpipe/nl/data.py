"""The NL2LogQL pairs: read, normalise, and split into training and held-out sets.

The shared dataset (``nl2logql/nl2logql_train.jsonl``: chat records of a system prompt, a
question and the gold LogQL) is read by path, never copied. Each gold query is parsed and
validated with our parser and re-printed in the canonical spelling of
:mod:`logpipe.nl.normalise`; a query our parser rejects is kept out and reported with the
reason (a list, never a traceback).

Why the held-out split groups pairs: the dataset is written from question templates, each
instantiated for several applications ("... for openssh-us-east?", "... for
openssh-eu-west?"), with the same query apart from the label values. Splitting pairs at random
would put a twin of nearly every held-out question in the training set, and score
memorisation. So pairs are grouped: two pairs share a group when their questions are equal
once the label values of their queries (and ``<family>-...`` application names) are masked,
or when their queries are equal once label values are masked. Whole groups go to one side.

The split is deterministic and stratified: within each application family (``openssh``,
``openstack``, ``hdfs``, from the ``application`` label), groups are ordered by a SHA-256 of
their key and taken in that order until the family's held-out share reaches ``fraction``.
Nothing random, nothing that depends on the machine or on the order of the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from logpipe.errors import InputError, LogQLError, LogQLParseError
from logpipe.labels import MatchOp
from logpipe.logql import ast, format_query, parse_query
from logpipe.nl.normalise import canonical
from logpipe.nl.tree import map_matchers, selector_matchers

__all__ = [
    "DATASET_RELPATH",
    "HELDOUT_FRACTION",
    "LoadedPairs",
    "Pair",
    "Rejection",
    "Split",
    "family_of",
    "group_keys",
    "load_split",
    "mask_question",
    "query_skeleton",
    "read_pairs",
    "split_pairs",
]

DATASET_RELPATH = "nl2logql/nl2logql_train.jsonl"  # under the shared data directory
HELDOUT_FRACTION = 0.2
_WORD = re.compile(r"[a-z0-9<>_]+")


@dataclass(frozen=True)
class Pair:
    """A question and its gold query in canonical spelling (``expr`` is its tree)."""

    question: str
    query: str
    expr: ast.Expr = field(compare=False, repr=False)
    family: str
    line: int = 0  # 1-based line in the dataset file; 0 for generated pairs
    source: str = "nl2logql"


@dataclass(frozen=True)
class Rejection:
    """A record that is not a usable pair: ``kind`` is ``parse``, ``validation`` or
    ``record`` (not a chat record with a question and an answer)."""

    line: int
    question: str
    query: str
    kind: str
    reason: str


@dataclass
class LoadedPairs:
    pairs: list[Pair]
    rejected: list[Rejection]


def family_of(expr: ast.Expr, question: str = "", known: Iterable[str] = ()) -> str:
    """The application family of a pair: the query's ``application`` value up to its first
    ``-`` (``openssh-us-east`` -> ``openssh``); else the first of the ``known`` families the
    question names (a gold query may lack the application matcher); else ``other``."""
    for m in selector_matchers(expr):
        if m.name == "application" and m.op == MatchOp.EQ and m.value:
            return m.value.split("-", 1)[0].lower()
    lowered = question.lower()
    found = [(lowered.find(f), f) for f in known if re.search(rf"\b{re.escape(f)}\b", lowered)]
    return min(found)[1] if found else "other"


def _record(line_text: str) -> tuple[str, str] | None:
    """(question, answer) of a chat record (or of a plain ``{"question": ..., "query":
    ...}`` object, the form users write examples in), or None when it is neither."""
    try:
        record = json.loads(line_text)
    except ValueError:
        return None
    if (isinstance(record, dict) and isinstance(record.get("question"), str)
            and isinstance(record.get("query"), str)):  # fmt: skip
        return record["question"].strip(), record["query"].strip()
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list):
        return None
    by_role: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            by_role.setdefault(str(message.get("role")), message["content"])
    if "user" not in by_role or "assistant" not in by_role:
        return None
    return by_role["user"].strip(), by_role["assistant"].strip()


def read_pairs(path: str | Path) -> LoadedPairs:
    """Every chat record (or question/query object) of the JSONL file at ``path``, parsed
    and normalised."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the NL2LogQL pairs: {exc}", path=str(path)) from None
    pairs: list[Pair] = []
    rejected: list[Rejection] = []
    for number, line_text in enumerate(text.splitlines(), start=1):
        if not line_text.strip():
            continue
        record = _record(line_text)
        if record is None:
            reason = "not a chat record with a user and an assistant message"
            rejected.append(Rejection(number, "", line_text[:200], "record", reason))
            continue
        question, query = record
        try:
            expr = canonical(parse_query(query))
        except LogQLError as exc:
            kind = "parse" if isinstance(exc, LogQLParseError) else "validation"
            rejected.append(Rejection(number, question, query, kind, str(exc)))
            continue
        pairs.append(Pair(question, format_query(expr), expr, family_of(expr), number))
    known = {p.family for p in pairs} - {"other"}
    pairs = [p if p.family != "other" else
             dataclasses.replace(p, family=family_of(p.expr, p.question, known))
             for p in pairs]  # fmt: skip
    return LoadedPairs(pairs, rejected)


# ------------------------------------------------------------------ grouping and split
def _label_values(expr: ast.Expr) -> list[str]:
    return sorted({m.value for m in selector_matchers(expr) if len(m.value) >= 3},
                  key=lambda v: (-len(v), v))  # fmt: skip


def mask_question(question: str, expr: ast.Expr, family: str) -> str:
    """The question with its query's label values and ``<family>-...`` names masked, in
    lower case, as a run of words: what stays the same across a template's variants."""
    text = question.lower()
    for value in _label_values(expr):
        text = text.replace(value.lower(), " <v> ")
    if family != "other":
        text = re.sub(rf"\b{re.escape(family)}(?:-[\w.]+)+", " <v> ", text)
    return " ".join(_WORD.findall(text))


def query_skeleton(expr: ast.Expr) -> str:
    """The query with every selector value replaced by ``_``."""
    masked = map_matchers(expr, lambda m: type(m)(m.name, m.op, "_" if m.op in
                                                 (MatchOp.EQ, MatchOp.NE) else "_+"))  # fmt: skip
    return format_query(masked)


def group_keys(pairs: Sequence[Pair]) -> list[str]:
    """A group key per pair: pairs of a family whose masked questions or query skeletons
    are equal share one (union-find over both): ``family: smallest masked question``."""
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    masked = [mask_question(p.question, p.expr, p.family) for p in pairs]
    for i, pair in enumerate(pairs):
        for key in (f"q:{pair.family}:{masked[i]}", f"s:{pair.family}:{query_skeleton(pair.expr)}"):
            j = first_seen.setdefault(key, i)
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    names: dict[int, str] = {}
    for i, pair in enumerate(pairs):
        root, name = find(i), f"{pair.family}: {masked[i]}"
        names[root] = min(names.get(root, name), name)
    return [names[find(i)] for i in range(len(pairs))]


def _rank(family: str, key: str) -> str:
    return hashlib.sha256(f"{family}\n{key}".encode()).hexdigest()


@dataclass
class Split:
    """Training and held-out pairs; ``heldout_groups`` are the group keys held out, so
    generated data can be kept clear of them."""

    train: list[Pair]
    heldout: list[Pair]
    heldout_groups: frozenset[str]


def split_pairs(pairs: Sequence[Pair], fraction: float = HELDOUT_FRACTION) -> Split:
    """Hold out about ``fraction`` of each family's pairs, whole groups at a time."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1), not {fraction}")
    keys = group_keys(pairs)
    by_family: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (pair, key) in enumerate(zip(pairs, keys, strict=True)):
        by_family[pair.family][key].append(i)
    held: set[int] = set()
    held_groups: set[str] = set()
    for family, groups in sorted(by_family.items()):
        total = sum(len(v) for v in groups.values())
        taken = 0
        for key in sorted(groups, key=lambda k: _rank(family, k)):
            if taken >= fraction * total:
                break
            held.update(groups[key])
            held_groups.add(key)
            taken += len(groups[key])
    train = [p for i, p in enumerate(pairs) if i not in held]
    heldout = [p for i, p in enumerate(pairs) if i in held]
    return Split(train, heldout, frozenset(held_groups))


def load_split(
    path: str | Path, fraction: float = HELDOUT_FRACTION
) -> tuple[Split, list[Rejection]]:
    """The dataset at ``path``, split; and the records our parser rejected."""
    loaded = read_pairs(path)
    return split_pairs(loaded.pairs, fraction), loaded.rejected


def questions_of(pairs: Iterable[Pair]) -> set[str]:
    """Questions in a comparable form (lower case, single spaces)."""
    return {" ".join(p.question.lower().split()) for p in pairs}
