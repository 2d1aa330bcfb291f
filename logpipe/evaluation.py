"""Log-parsing accuracy: the four metrics of Loghub-2.0 (GA, PA, FGA, FTA).

Why these and why exactly so: Loghub-2.0 (Jiang et al., "A Large-Scale Evaluation for Log
Parsing Techniques: How Far Are We?", ISSTA 2024) is the reference benchmark of the field, and
its published per-parser tables are computed by its evaluation code (github.com/logpai/loghub-2.0,
``benchmark/logparser/utils/evaluator.py`` for GA/FGA, ``benchmark/evaluation/utils/
PA_calculator.py`` for PA, ``benchmark/evaluation/utils/template_level_analysis.py`` for FTA,
driven by ``benchmark/evaluation/utils/evaluator_main.py``). A figure of ours is only comparable
with those tables when it is computed the same way, so this module follows that code rule for
rule, including its quirks, and documents each one here.

Inputs are two sequences aligned by line: the ground-truth template of every line and the
predicted template of every line. As in Loghub-2.0, a predicted *group* is the set of lines
with the same predicted template **string** (not the same cluster id): two clusters that end up
with the same template text count as one group. Callers that want to score cluster ids instead
pass ``predicted_groups``.

Definitions (``S`` = the lines whose truth template is present, see "Missing values"):

* **GA** (grouping accuracy): a truth group ``G_t`` (the lines of ``S`` with truth template
  ``t``) is *correctly grouped* when all its lines share one predicted group ``P`` and ``P``
  holds no other line of ``S`` (``P == G_t`` as sets). GA = (lines in correctly grouped truth
  groups) / ``|S|``.
* **FGA** (F1 of grouping accuracy): PGA = correct groups / predicted groups in ``S``;
  RGA = correct groups / truth groups in ``S``; FGA = 2·PGA·RGA / (PGA + RGA), 0 when both are 0.
* **PA** (parsing accuracy): the share of lines whose predicted template string equals the truth
  template string exactly (no whitespace or case normalisation: the evaluator compares the two
  pandas columns with ``eq``). The denominator is *all* lines, including lines without a truth
  template, which therefore always count as wrong (``PA_calculator.py`` does not drop them).
* **FTA** (F1 of template accuracy): a predicted group ``P`` is a *correct template* when every
  line of ``P`` has the same truth template ``t`` and the predicted template string equals ``t``.
  PTA = correct templates / predicted groups; RTA = correct templates / truth groups; FTA is
  their F1 (0 when both are 0).

  The paper's prose (after Khan et al., ICSE 2022) also asks that the template's messages be
  "correctly grouped", i.e. that ``G_t`` not be split over other predicted groups. The
  published code does not check that: it groups by predicted template and only tests
  ``set(truth templates in P) == {template of P}``. ``fta`` follows the code, so it matches the
  published tables; ``fta_strict`` adds the paper's condition (``P == G_t``), so the two differ
  exactly when a truth group is split and one of its pieces carries the exact truth text.

Missing values (the evaluator reads both files with ``pandas.read_csv(dtype=str)``):

* a truth line with no template (``None`` here; an empty CSV field there) is dropped before
  GA, FGA and FTA, and counted as a wrong line in PA's denominator (above);
* a missing predicted template becomes the empty string (``fillna("")``), a group like any
  other;
* pandas also turns strings such as ``"NA"``, ``"null"`` or ``"None"`` into missing values; this
  module does not mimic that (a template text is never rewritten). No truth template of the 16
  Loghub-2k systems is such a string, so the published figures are unaffected.

Edge cases the reference code leaves as a ``ZeroDivisionError`` (no lines, or no line with a
truth template) raise :class:`~logpipe.errors.EvaluationError` here.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from logpipe.errors import EvaluationError, InputError

__all__ = [
    "AlignedTemplates",
    "ParsingScores",
    "evaluate",
    "evaluate_files",
    "f1",
    "load_aligned",
    "read_labelled_lines",
]


@dataclass(frozen=True)
class ParsingScores:
    """The four Loghub-2.0 metrics plus the counts they were computed from.

    The counts are kept so a reader can check a figure by hand and so a mean over systems can be
    recomputed differently (e.g. micro-averaged) without re-running a parser.
    """

    ga: float
    pa: float
    fga: float
    fta: float
    pga: float
    rga: float
    pta: float
    rta: float
    fta_strict: float
    n_lines: int
    """Every aligned line (PA's denominator)."""
    n_scored_lines: int
    """Lines with a truth template (GA's denominator)."""
    n_truth_groups: int
    n_pred_groups: int
    """Predicted groups among the scored lines."""
    n_correct_groups: int
    n_correctly_grouped_lines: int
    n_correctly_parsed_lines: int
    n_correct_templates: int
    n_correct_templates_strict: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain JSON-ready mapping (metric name -> value)."""
        return asdict(self)


def f1(precision: float, recall: float) -> float:
    """Harmonic mean, 0 when both are 0 (the Loghub-2.0 convention for FGA and FTA)."""
    if precision == 0 and recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def evaluate(
    truth: Sequence[str | None],
    predicted: Sequence[str | None],
    *,
    predicted_groups: Sequence[Hashable] | None = None,
) -> ParsingScores:
    """Score predicted templates against ground truth, line by line (see the module docs).

    ``truth[i]`` and ``predicted[i]`` belong to the same log line; ``None`` marks a missing
    template. ``predicted_groups[i]``, when given, is the group key (e.g. cluster id) of line
    ``i`` and replaces the predicted template string as the grouping for GA, FGA and FTA; a group
    then counts as a correct template only if all its lines carry the same predicted string, and
    a truth template found by several such groups counts once.

    The work is a few passes with counters over the lines, so 50k lines take milliseconds.
    """
    n_lines = len(truth)
    if len(predicted) != n_lines:
        raise EvaluationError(
            f"{n_lines} ground-truth templates but {len(predicted)} predicted templates: "
            "the two sequences must be aligned line by line"
        )
    if predicted_groups is not None and len(predicted_groups) != n_lines:
        raise EvaluationError(
            f"{n_lines} ground-truth templates but {len(predicted_groups)} predicted group keys"
        )
    if n_lines == 0:
        raise EvaluationError("nothing to evaluate: no lines were given")

    pred_text = ["" if p is None else p for p in predicted]
    keys: Sequence[Hashable] = pred_text if predicted_groups is None else predicted_groups

    # PA over every line; a missing truth template never matches.
    n_parsed_ok = sum(1 for t, p in zip(truth, pred_text, strict=True) if t is not None and t == p)

    # Everything else over the lines that have a truth template.
    scored = [i for i, t in enumerate(truth) if t is not None]
    n_scored = len(scored)
    if n_scored == 0:
        raise EvaluationError(
            f"none of the {n_lines} lines has a ground-truth template (all are empty)"
        )
    truth_size: Counter[str] = Counter()
    pred_size: Counter[Hashable] = Counter()
    pair_size: Counter[tuple[str, Hashable]] = Counter()
    # The predicted template text of each group, or None when a group holds several texts
    # (only possible with explicit group keys).
    group_text: dict[Hashable, str | None] = {}
    for i in scored:
        t = truth[i]
        assert t is not None  # filtered above; narrows the type for mypy
        k = keys[i]
        truth_size[t] += 1
        pred_size[k] += 1
        pair_size[(t, k)] += 1
        text = pred_text[i]
        if k not in group_text:
            group_text[k] = text
        elif group_text[k] != text:
            group_text[k] = None

    n_correct_groups = 0
    n_grouped_ok = 0
    # Sets of truth templates, not counters: with explicit group keys two pure groups can carry
    # the same right text, and a truth template must count once (else RTA could exceed 1).
    # With text keys (the Loghub-2.0 case) each truth template has at most one such group.
    templates_ok: set[str] = set()
    templates_ok_strict: set[str] = set()
    for (t, k), size in pair_size.items():
        pure = size == pred_size[k]  # the predicted group holds only lines of truth group t
        whole = size == truth_size[t]  # truth group t is not split over other predicted groups
        if pure and whole:
            n_correct_groups += 1
            n_grouped_ok += size
        if pure and group_text[k] == t:
            templates_ok.add(t)
            if whole:
                templates_ok_strict.add(t)
    n_templates_ok = len(templates_ok)
    n_templates_ok_strict = len(templates_ok_strict)

    n_truth_groups = len(truth_size)
    n_pred_groups = len(pred_size)
    pga = n_correct_groups / n_pred_groups
    rga = n_correct_groups / n_truth_groups
    pta = n_templates_ok / n_pred_groups
    rta = n_templates_ok / n_truth_groups
    return ParsingScores(
        ga=n_grouped_ok / n_scored,
        pa=n_parsed_ok / n_lines,
        fga=f1(pga, rga),
        fta=f1(pta, rta),
        pga=pga,
        rga=rga,
        pta=pta,
        rta=rta,
        fta_strict=f1(
            n_templates_ok_strict / n_pred_groups, n_templates_ok_strict / n_truth_groups
        ),
        n_lines=n_lines,
        n_scored_lines=n_scored,
        n_truth_groups=n_truth_groups,
        n_pred_groups=n_pred_groups,
        n_correct_groups=n_correct_groups,
        n_correctly_grouped_lines=n_grouped_ok,
        n_correctly_parsed_lines=n_parsed_ok,
        n_correct_templates=n_templates_ok,
        n_correct_templates_strict=n_templates_ok_strict,
    )


# --- Loghub structured CSV files -----------------------------------------------------------


@dataclass(frozen=True)
class _StructuredColumns:
    line_ids: list[str] | None
    templates: list[str | None]


@dataclass(frozen=True)
class AlignedTemplates:
    """Truth and predicted templates of two structured CSV files, aligned line by line."""

    truth: list[str | None]
    predicted: list[str | None]
    aligned_by: str
    """``"LineId"`` when both files have that column, else ``"row"`` (file order)."""


def _read_structured(path: Path) -> _StructuredColumns:
    """Read the ``LineId`` (when present) and ``EventTemplate`` columns of a Loghub CSV.

    An empty ``EventTemplate`` field becomes ``None`` (pandas reads it as NaN, see module docs).
    The stdlib reader is used on purpose: it reads every field as text, exactly, with no type
    inference and no NA-string guessing.
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise EvaluationError(f"{path}: empty file, expected a Loghub structured CSV")
            if "EventTemplate" not in header:
                raise EvaluationError(
                    f"{path}: no EventTemplate column (columns: {', '.join(header)}); "
                    "expected a Loghub structured CSV such as *_structured.csv"
                )
            t_col = header.index("EventTemplate")
            id_col = header.index("LineId") if "LineId" in header else None
            line_ids: list[str] | None = [] if id_col is not None else None
            templates: list[str | None] = []
            for row in reader:
                if not row:
                    continue  # a blank line: the csv module yields [] where pandas skips it
                if len(row) <= t_col or (id_col is not None and len(row) <= id_col):
                    raise EvaluationError(
                        f"{path}, line {reader.line_num}: {len(row)} fields, "
                        f"but the header has {len(header)}"
                    )
                templates.append(row[t_col] if row[t_col] != "" else None)
                if line_ids is not None and id_col is not None:
                    line_ids.append(row[id_col].strip())
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a CSV file", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text ({exc.reason}); Loghub CSVs are UTF-8",
            path=str(path),
            offset=exc.start,
        ) from None
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", path=str(path)) from None
    return _StructuredColumns(line_ids, templates)


def read_labelled_lines(path: Path, limit: int | None = None) -> tuple[list[str], list[str | None]]:
    """The ``Content`` and ``EventTemplate`` columns of a Loghub structured CSV (the first
    ``limit`` rows): what a parser reads and what it should answer, line by line. An
    empty template is None, as in :func:`load_aligned`."""
    contents: list[str] = []
    truth: list[str | None] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            contents.append(row["Content"])
            truth.append(row["EventTemplate"] or None)
            if limit is not None and len(contents) >= limit:
                break
    return contents, truth


def _line_id_key(value: str) -> int | str:
    """``"0001"`` and ``"1"`` are the same line; non-numeric ids are compared as text."""
    try:
        return int(value)
    except ValueError:
        return value


def load_aligned(truth_path: Path, parsed_path: Path) -> AlignedTemplates:
    """Read two Loghub structured CSVs and align them: by ``LineId`` when both have it.

    Without ``LineId`` on either side the files are aligned by row order, as the reference
    evaluator does (it relies on the pandas index). Different line counts, duplicate or
    unmatched line ids are an :class:`EvaluationError` naming both files.
    """
    truth = _read_structured(truth_path)
    parsed = _read_structured(parsed_path)
    n_truth, n_parsed = len(truth.templates), len(parsed.templates)
    if n_truth != n_parsed:
        raise EvaluationError(
            f"line counts differ: {truth_path} has {n_truth} lines, {parsed_path} has {n_parsed}; "
            "parse the same log file the ground truth was made from"
        )
    if truth.line_ids is None or parsed.line_ids is None:
        return AlignedTemplates(truth.templates, parsed.templates, aligned_by="row")

    by_id: dict[int | str, str | None] = {}
    for raw_id, template in zip(parsed.line_ids, parsed.templates, strict=True):
        key = _line_id_key(raw_id)
        if key in by_id:
            raise EvaluationError(f"{parsed_path}: LineId {raw_id} appears more than once")
        by_id[key] = template
    predicted: list[str | None] = []
    seen: set[int | str] = set()
    for raw_id in truth.line_ids:
        key = _line_id_key(raw_id)
        if key in seen:
            raise EvaluationError(f"{truth_path}: LineId {raw_id} appears more than once")
        seen.add(key)
        if key not in by_id:
            raise EvaluationError(
                f"LineId {raw_id} of {truth_path} is not in {parsed_path} "
                f"(both have {n_truth} lines, but their LineIds differ)"
            )
        predicted.append(by_id[key])
    return AlignedTemplates(truth.templates, predicted, aligned_by="LineId")


def evaluate_files(truth_path: Path, parsed_path: Path) -> tuple[ParsingScores, AlignedTemplates]:
    """:func:`load_aligned` then :func:`evaluate`; the alignment is returned for reporting."""
    aligned = load_aligned(truth_path, parsed_path)
    try:
        scores = evaluate(aligned.truth, aligned.predicted)
    except EvaluationError as exc:
        raise EvaluationError(f"{truth_path} vs {parsed_path}: {exc}") from None
    return scores, aligned
