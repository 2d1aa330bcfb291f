"""The LogQL syntax tree: frozen dataclasses, compared by value.

Why values: ``parse(format_query(q)) == q`` is the printer's contract and the test that holds
it, and the planner and the NL feature compare queries structurally (exact match after
normalisation). Positions (``pos``, the character offset in the source) are carried for error
messages but excluded from comparison, so a reprinted query equals its original.

Units are normalised at parse time: durations in nanoseconds, byte sizes in bytes, numbers
as floats; the printer writes them back in a canonical spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logpipe.labels import LabelMatcher

__all__ = [
    "AndFilter",
    "BinaryOp",
    "BytesFilter",
    "Decolorize",
    "Drop",
    "DurationFilter",
    "Expr",
    "Extraction",
    "Grouping",
    "IpFilter",
    "IpValue",
    "JsonParser",
    "Keep",
    "LabelFilter",
    "LabelFilterStage",
    "LabelFmt",
    "LabelFormat",
    "LabelReplace",
    "LineFilter",
    "LineFormat",
    "LogExpr",
    "LogRange",
    "LogfmtParser",
    "MetricExpr",
    "NumberFilter",
    "NumberLiteral",
    "OrFilter",
    "PatternParser",
    "RangeAggregation",
    "RegexpParser",
    "Stage",
    "StringFilter",
    "UnpackParser",
    "Unwrap",
    "VectorAggregation",
    "VectorLiteral",
    "VectorMatching",
]


def _pos() -> Any:
    """The source offset of a node: kept for messages, ignored by ``==``."""
    return field(default=-1, compare=False, repr=False, kw_only=True)


# ------------------------------------------------------------------ log pipeline stages
@dataclass(frozen=True)
class IpValue:
    """``ip("192.168.0.0/16")`` as a line filter value."""

    cidr: str


@dataclass(frozen=True)
class LineFilter:
    """``|= "a" or "b"``: ``op`` is one of ``|= != |~ !~ |> !>``."""

    op: str
    values: tuple[str | IpValue, ...]
    pos: int = _pos()


@dataclass(frozen=True)
class Extraction:
    """One ``label="expression"`` (or bare ``label``) of ``| json`` or ``| logfmt``."""

    label: str
    expression: str | None = None


@dataclass(frozen=True)
class JsonParser:
    extractions: tuple[Extraction, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class LogfmtParser:
    strict: bool = False
    keep_empty: bool = False
    extractions: tuple[Extraction, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class RegexpParser:
    pattern: str
    pos: int = _pos()


@dataclass(frozen=True)
class PatternParser:
    pattern: str
    pos: int = _pos()


@dataclass(frozen=True)
class UnpackParser:
    pos: int = _pos()


@dataclass(frozen=True)
class Decolorize:
    pos: int = _pos()


@dataclass(frozen=True)
class LineFormat:
    template: str
    pos: int = _pos()


@dataclass(frozen=True)
class LabelFmt:
    """``dst=src`` renames a label; ``dst="{{ template }}"`` sets it from a template."""

    dst: str
    src: str
    is_template: bool


@dataclass(frozen=True)
class LabelFormat:
    items: tuple[LabelFmt, ...]
    pos: int = _pos()


@dataclass(frozen=True)
class Drop:
    """``| drop a, b="x"``: a bare name, or a matcher that must hold for the label to go."""

    items: tuple[str | LabelMatcher, ...]
    pos: int = _pos()


@dataclass(frozen=True)
class Keep:
    items: tuple[str | LabelMatcher, ...]
    pos: int = _pos()


# label filters
@dataclass(frozen=True)
class StringFilter:
    matcher: LabelMatcher
    pos: int = _pos()


@dataclass(frozen=True)
class IpFilter:
    """``addr = ip("10.0.0.0/8")`` (``negate`` for ``!=``)."""

    label: str
    negate: bool
    cidr: str
    pos: int = _pos()


@dataclass(frozen=True)
class NumberFilter:
    label: str
    op: str
    value: float
    pos: int = _pos()


@dataclass(frozen=True)
class DurationFilter:
    label: str
    op: str
    nanos: int
    pos: int = _pos()


@dataclass(frozen=True)
class BytesFilter:
    label: str
    op: str
    size: int
    pos: int = _pos()


@dataclass(frozen=True)
class AndFilter:
    """Both sides hold; ``sep`` is how it was written (``and``, ``,`` or a space)."""

    left: LabelFilter
    right: LabelFilter
    sep: str = "and"


@dataclass(frozen=True)
class OrFilter:
    left: LabelFilter
    right: LabelFilter


LabelFilter = (
    StringFilter | IpFilter | NumberFilter | DurationFilter | BytesFilter | AndFilter | OrFilter
)


@dataclass(frozen=True)
class LabelFilterStage:
    filter: LabelFilter
    pos: int = _pos()


Stage = (
    LineFilter
    | JsonParser
    | LogfmtParser
    | RegexpParser
    | PatternParser
    | UnpackParser
    | Decolorize
    | LineFormat
    | LabelFormat
    | Drop
    | Keep
    | LabelFilterStage
)


@dataclass(frozen=True)
class LogExpr:
    """A stream selector and its pipeline: a log query."""

    matchers: tuple[LabelMatcher, ...]
    stages: tuple[Stage, ...] = ()
    pos: int = _pos()


# ------------------------------------------------------------------ metric queries
@dataclass(frozen=True)
class Unwrap:
    """``| unwrap [conv(]label[)]`` and the label filters after it."""

    label: str
    conversion: str = ""  # "", "bytes", "duration" or "duration_seconds"
    post_filters: tuple[LabelFilter, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class LogRange:
    """A log query over a sliding window: ``{...} | ... [5m] offset 1h``."""

    log: LogExpr
    range_nanos: int
    offset_nanos: int = 0
    unwrap: Unwrap | None = None
    pos: int = _pos()


@dataclass(frozen=True)
class Grouping:
    """``by (a, b)`` or ``without (a)``; ``by ()`` is an empty ``by``."""

    without: bool
    labels: tuple[str, ...]


@dataclass(frozen=True)
class RangeAggregation:
    op: str
    range: LogRange
    param: float | None = None  # quantile_over_time's φ
    grouping: Grouping | None = None
    pos: int = _pos()


@dataclass(frozen=True)
class VectorAggregation:
    op: str
    expr: MetricExpr
    param: float | None = None  # topk / bottomk's k
    grouping: Grouping | None = None
    grouping_first: bool = field(default=False, compare=False)  # `sum by (a) (...)` spelling
    pos: int = _pos()


@dataclass(frozen=True)
class VectorMatching:
    """``on (a) group_left (b)`` and friends; ``card`` is ``one``, ``left`` or ``right``."""

    on: bool
    labels: tuple[str, ...]
    card: str = "one"
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class BinaryOp:
    op: str
    lhs: MetricExpr
    rhs: MetricExpr
    return_bool: bool = False
    matching: VectorMatching | None = None
    pos: int = _pos()


@dataclass(frozen=True)
class NumberLiteral:
    value: float
    pos: int = _pos()


@dataclass(frozen=True)
class VectorLiteral:
    """``vector(1)``: one sample without labels at every step."""

    value: float
    pos: int = _pos()


@dataclass(frozen=True)
class LabelReplace:
    expr: MetricExpr
    dst: str
    replacement: str
    src: str
    regex: str
    pos: int = _pos()


MetricExpr = (
    RangeAggregation | VectorAggregation | BinaryOp | NumberLiteral | VectorLiteral | LabelReplace
)
Expr = LogExpr | MetricExpr
