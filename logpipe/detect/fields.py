"""Typed entities from a parsed line: which template slots hold an IP, a user, a port...

Why per template: every line of one template has its values in the same slots, and the text
around a slot (``user <*> from <*> port <*>``) says what the slot holds far more reliably
than one value's shape does. So the slot types of a template are decided **once**, from its
text and the shape of the values of the first line seen with it, cached, and applied to all
of its lines: typing a line is then a dictionary lookup and a normaliser per slot.

How a slot is typed (first rule that fires wins):

1. **Strong value shapes**: a URL, an e-mail address, an IPv4 address (``/10.0.0.1`` and
   ``10.0.0.1:8080`` too), a block id (``blk_...``), a UUID.
2. **The word before the slot** (``user``, ``port``, ``pid``, ``host``, ``session``,
   ``size``, ``took``...), or the slot right before it when only ``:`` separates them and it
   holds an address (``<*>:<*>`` after an IP is a port).
3. **The word after the slot**: a unit (``ms``, ``seconds``, ``bytes``, ``KB``).
4. **Weak value shapes**: a number (``0x40`` too), a number with a unit (``12ms``,
   ``3.5MB``), a path, a long hex or digit-heavy id, a Java-style dotted name (a
   component), a dotted host name, a word; anything else is ``value``.

Values are normalised into the identity an anomaly model compares: addresses lose their
leading ``/`` and trailing port, hosts and users are case-folded, sizes (in bytes) and
durations (in milliseconds) are bucketed by powers of two, so ``size 67108864`` and
``size 67108000`` are the same entity, and plain numbers too from 16 up (``0``, ``1`` and
``2`` stay apart: small numbers are often codes). The rules are generic (no per-dataset
table); what a type *means* for a model (whether its values recur across windows) is
learned from data, not decided here.

Bad input is counted, never raised: a line whose number of values does not match its
template's slots is typed by value shape alone (``FieldStats.slot_mismatches``).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from logpipe.parsing.masking import VAR

__all__ = [
    "ENTITY_TYPES",
    "MEASURE_TYPES",
    "Entity",
    "FieldExtractor",
    "FieldStats",
    "SlotPlan",
    "classify_slot",
    "identity_kind",
    "normalise",
]

ENTITY_TYPES: tuple[str, ...] = (
    "ip",
    "host",
    "port",
    "path",
    "url",
    "user",
    "email",
    "pid",
    "block",
    "session",
    "id",
    "component",
    "duration",
    "size",
    "number",
    "word",
    "value",
)
"""Every entity type, in a fixed order (graphs index node types by position in it)."""


_QUANTITY_TYPES = frozenset({"port", "pid", "duration", "size", "number"})
MEASURE_TYPES = frozenset({"duration", "size", "number"})
"""Types that measure something rather than name it: a line has a size, it does not
*relate* to one, so graphs attach them to their template only."""


def identity_kind(entity_type: str) -> str:
    """The namespace a value's identity lives in: its type for quantities, else ``name``.

    Why one namespace for every non-numeric type: the same user or host shows up in slots
    that the rules type differently (``for <*>`` and ``user=<*>``, ``on <*>`` and
    ``host=<*>``); it is one entity, so it must be one node. Numbers stay apart by type:
    ``8`` requests and port ``8`` are not the same thing.
    """
    return entity_type if entity_type in _QUANTITY_TYPES else "name"


@dataclass(frozen=True, slots=True)
class Entity:
    """One typed value of a line: ``type`` from :data:`ENTITY_TYPES`, ``value`` normalised."""

    type: str
    value: str

    @property
    def name(self) -> str:
        """``type:value``, the node name alerts show."""
        return f"{self.type}:{self.value}"


# ------------------------------------------------------------------------------ shapes
_IPV4 = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}"
_IP_VALUE = re.compile(rf"/?({_IPV4})(?::(\d{{1,5}}))?")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_BLOCK = re.compile(r"blk_-?\d+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PATH = re.compile(r"(?:/[^/\s]+)+/?|~(?:/[^/\s]+)+/?|[A-Za-z]:\\\S+|\./\S+")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_HEX = re.compile(r"(?:0[xX])?[0-9a-fA-F]{8,}")
_HEX_NUMBER = re.compile(r"0[xX][0-9a-fA-F]{1,7}")
_DIGIT_HEAVY_ID = re.compile(r"(?=(?:\D*\d){4})[A-Za-z0-9_\-:.]{8,}")
# a Java-style class name: three or more dotted identifiers, one with a capital or a '$'
_COMPONENT = re.compile(r"(?=.*[A-Z$])[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*){2,}")
# a host name: dotted labels, three or more of them or ending in a common suffix
_HOST = re.compile(
    r"(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:(?:\.[A-Za-z0-9-]+){2,}|\.(?:com|net|org|io|edu|gov|local|lan|internal|corp|localdomain))"
)
_WORD = re.compile(r"[A-Za-z][A-Za-z_-]*")
_QUANTITY = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*([A-Za-z]+)")

# Units to a base unit: milliseconds for durations, bytes for sizes.
_DURATION_UNITS: dict[str, float] = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "ms": 1.0,
    "msec": 1.0,
    "msecs": 1.0,
    "millis": 1.0,
    "milliseconds": 1.0,
    "s": 1000.0,
    "sec": 1000.0,
    "secs": 1000.0,
    "second": 1000.0,
    "seconds": 1000.0,
    "m": 60_000.0,
    "min": 60_000.0,
    "mins": 60_000.0,
    "minute": 60_000.0,
    "minutes": 60_000.0,
    "h": 3_600_000.0,
    "hr": 3_600_000.0,
    "hrs": 3_600_000.0,
    "hour": 3_600_000.0,
    "hours": 3_600_000.0,
}
_SIZE_UNITS: dict[str, float] = {
    "b": 1.0,
    "byte": 1.0,
    "bytes": 1.0,
    "kb": 1024.0,
    "k": 1024.0,
    "kib": 1024.0,
    "mb": 1024.0**2,
    "mib": 1024.0**2,
    "m": 1024.0**2,
    "gb": 1024.0**3,
    "gib": 1024.0**3,
    "g": 1024.0**3,
    "tb": 1024.0**4,
    "tib": 1024.0**4,
}

# Words before a slot that name its type. Looked up case-folded without punctuation.
_KEYWORDS: dict[str, str] = {
    **dict.fromkeys(
        ("user", "users", "username", "uid", "login", "account", "owner", "for", "by"), "user"
    ),
    **dict.fromkeys(("host", "hostname", "node", "server", "machine", "domain"), "host"),
    **dict.fromkeys(("port", "sport", "dport"), "port"),
    **dict.fromkeys(("pid", "ppid", "process", "tid", "thread"), "pid"),
    **dict.fromkeys(("block", "blk", "blockid"), "block"),
    **dict.fromkeys(
        ("session", "sid", "request", "req", "requestid", "txn", "transaction", "trace"),
        "session",
    ),
    **dict.fromkeys(("id", "job", "task", "container", "attempt", "app"), "id"),
    **dict.fromkeys(("size", "bytes", "length", "len"), "size"),
    **dict.fromkeys(("took", "elapsed", "duration", "latency", "after", "within"), "duration"),
    **dict.fromkeys(("file", "path", "dir", "directory", "folder"), "path"),
    **dict.fromkeys(("url", "uri", "endpoint", "href"), "url"),
    **dict.fromkeys(
        (
            "service",
            "upstream",
            "component",
            "module",
            "class",
            "logger",
            "daemon",
            "program",
            "svc",
        ),
        "component",
    ),
    **dict.fromkeys(("ip", "addr", "address", "src", "dst", "dest", "source", "client"), "ip"),
    **dict.fromkeys(("email", "mail"), "email"),
}
_ADDRESS_TYPES = frozenset({"ip", "host"})
_PREV_WORD = re.compile(r"([A-Za-z][A-Za-z0-9_]*)[^A-Za-z0-9]*$")
# a unit after the value: ``<*> ms`` but not ``<*> bytes=<*>`` (that names the next value)
_NEXT_WORD = re.compile(r"^\s*([A-Za-zµ]+)\b(?![=:])")

_EXACT_BELOW = 16.0
"""Quantities below this keep their exact value; above it, a power-of-two bucket."""


def _bucket(number: float, exact_below: float = _EXACT_BELOW) -> str:
    """The identity of a quantity: exact when below ``exact_below``, else its power of two."""
    if math.isnan(number) or math.isinf(number):
        return "nan"
    if abs(number) < exact_below:
        return f"{number:g}"
    sign = "-" if number < 0 else ""
    return f"{sign}~2^{round(math.log2(abs(number)))}"


def _quantity(value: str, units: dict[str, float]) -> str:
    """``12ms`` / ``3.5 MB`` / ``800`` to its power-of-two bucket in the base unit (``0``
    stays ``0``; a small duration or size is a measurement, not a code); else the raw text."""
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return _bucket(float(text), 1.0)
    match = _QUANTITY.fullmatch(text)
    if match:
        scale = units.get(match.group(2).lower())
        if scale is not None:
            return _bucket(float(match.group(1)) * scale, 1.0)
    return text


def _normalise_ip(value: str) -> str:
    match = _IP_VALUE.fullmatch(value.strip())
    return match.group(1) if match else value.strip().lower()


def _normalise_port(value: str) -> str:
    text = value.strip()
    return str(int(text)) if text.isdigit() else text


def _normalise_number(value: str) -> str:
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return _bucket(float(text))
    if _HEX_NUMBER.fullmatch(text):  # a short hex value (0x40) is a number, not an address
        return _bucket(float(int(text, 16)))
    return text


_NORMALISERS: dict[str, Callable[[str], str]] = {
    "ip": _normalise_ip,
    "host": lambda v: v.strip().lower().rstrip("."),
    "port": _normalise_port,
    "user": lambda v: v.strip().strip("'\"").lower(),
    "email": lambda v: v.strip().lower(),
    "duration": lambda v: _quantity(v, _DURATION_UNITS),
    "size": lambda v: _quantity(v, _SIZE_UNITS),
    "number": _normalise_number,
}


def normalise(entity_type: str, value: str) -> str:
    """The identity of ``value`` as an entity of ``entity_type`` (see the module docstring)."""
    fn = _NORMALISERS.get(entity_type)
    return fn(value) if fn is not None else value.strip()


def _shape_strong(value: str) -> str | None:
    text = value.strip()
    if _URL.fullmatch(text):
        return "url"
    if _EMAIL.fullmatch(text):
        return "email"
    if _IP_VALUE.fullmatch(text):
        return "ip"
    if _BLOCK.fullmatch(text):
        return "block"
    if _UUID.fullmatch(text):
        return "session"
    return None


def _shape_weak(value: str) -> str:
    text = value.strip()
    if _NUMBER.fullmatch(text) or _HEX_NUMBER.fullmatch(text):
        return "number"
    quantity = _QUANTITY.fullmatch(text)
    if quantity:
        unit = quantity.group(2).lower()
        if unit in _DURATION_UNITS and unit not in {"m"}:
            return "duration"
        if unit in _SIZE_UNITS and unit not in {"m", "k", "g"}:
            return "size"
    if _PATH.fullmatch(text):
        return "path"
    if _HEX.fullmatch(text) or _DIGIT_HEAVY_ID.fullmatch(text):
        return "id"
    if _COMPONENT.fullmatch(text) and not any(c.isdigit() for c in text):
        return "component"
    if _HOST.fullmatch(text):
        return "host"
    if _WORD.fullmatch(text):
        return "word"
    return "value"


def _keyword_type(keyword: str, value: str, shape: str) -> str | None:
    """The type a keyword names, when the value's shape does not contradict it."""
    kind = _KEYWORDS.get(keyword)
    if kind is None:
        return None
    numeric = shape == "number"
    if kind in {"port", "pid"}:
        return kind if numeric else None
    if kind in {"size", "duration"}:
        return kind if numeric or shape in {"size", "duration"} else None
    if kind == "user":
        return kind if shape in {"word", "id", "value"} else None
    if kind in {"host", "component"}:
        return kind if shape in {"word", "host", "component", "id", "value"} else None
    if kind == "ip":
        return None  # an address keyword only confirms what the shape already says
    if kind == "path":
        return kind if shape in {"path", "word", "value"} else None
    return kind


def classify_slot(before: str, after: str, value: str, previous: str | None = None) -> str:
    """The entity type of one template slot.

    ``before``/``after`` are the template text between this slot and its neighbours,
    ``value`` a value seen in it, ``previous`` the type of the slot just before (used for
    ``<*>:<*>`` after an address). Rules in the module docstring.
    """
    strong = _shape_strong(value)
    if strong is not None:
        return strong
    shape = _shape_weak(value)
    if previous in _ADDRESS_TYPES and before == ":" and shape == "number":
        return "port"
    prev_word = _PREV_WORD.search(before)
    if prev_word is not None:
        kind = _keyword_type(prev_word.group(1).lower(), value, shape)
        if kind is not None:
            return kind
    next_word = _NEXT_WORD.match(after)
    if next_word is not None and shape == "number":
        unit = next_word.group(1).lower()
        if unit in _DURATION_UNITS and len(unit) > 1:
            return "duration"
        if unit in _SIZE_UNITS and len(unit) > 1:
            return "size"
    return shape


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """The entity type of every slot of one template (``types[i]`` for the i-th ``<*>``)."""

    template: str
    types: tuple[str, ...]


@dataclass
class FieldStats:
    """What the extractor did, for the reports (nothing it cannot type is dropped silently)."""

    templates: int = 0
    lines: int = 0
    entities: int = 0
    slot_mismatches: int = 0
    evicted_plans: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class FieldExtractor:
    """Typed entities of parsed lines, with slot types decided once per template.

    ``max_templates`` bounds the plan cache (least recently used evicted and counted); a
    template seen again after eviction is planned again from the line at hand.
    """

    def __init__(self, max_templates: int = 100_000) -> None:
        self.max_templates = max_templates
        self.stats = FieldStats()
        self._plans: OrderedDict[str, SlotPlan] = OrderedDict()

    def plan(self, template: str, params: Sequence[str]) -> SlotPlan:
        """The slot types of ``template`` (decided from ``params`` the first time only)."""
        plan = self._plans.get(template)
        if plan is not None:
            self._plans.move_to_end(template)
            return plan
        pieces = template.split(VAR)
        slots = len(pieces) - 1
        types: list[str] = []
        previous: str | None = None
        for i in range(slots):
            value = params[i] if i < len(params) and len(params) == slots else ""
            kind = classify_slot(pieces[i], pieces[i + 1], value, previous) if value else "value"
            types.append(kind)
            previous = kind
        plan = SlotPlan(template, tuple(types))
        if len(params) == slots:
            # only a line that fits its template may decide the plan for all the others
            self._plans[template] = plan
            self.stats.templates += 1
            if len(self._plans) > self.max_templates:
                self._plans.popitem(last=False)
                self.stats.evicted_plans += 1
        return plan

    def entities(self, template: str, params: Sequence[str]) -> list[Entity]:
        """The typed, normalised entities of one line (empty values are skipped)."""
        plan = self.plan(template, params)
        stats = self.stats
        stats.lines += 1
        types: Sequence[str] = plan.types
        if len(types) != len(params):
            stats.slot_mismatches += 1
            types = [_shape_strong(p) or _shape_weak(p) for p in params]
        out: list[Entity] = []
        by_type = stats.by_type
        for kind, raw in zip(types, params, strict=True):
            if not raw or raw.isspace():
                continue
            out.append(Entity(kind, normalise(kind, raw)))
            by_type[kind] = by_type.get(kind, 0) + 1
        stats.entities += len(out)
        return out
