"""Durations, byte sizes and numbers as LogQL writes them, parsed and printed exactly.

Why one module: ranges (``[5m]``), offsets, duration label filters (``latency > 1.5s``) and
byte filters (``size > 10KiB``) each need a parser and a printer that round-trip, and the
engine needs the same numbers the printer shows.

Durations follow Go's ``time.ParseDuration`` (``ns us µs ms s m h``, fractions, sequences
such as ``1h30m``) extended with Prometheus's ``d w y`` (24h, 7d, 365d), which Loki accepts in
ranges. Byte sizes follow the ``go-humanize`` parser Loki uses: ``B``, SI ``kB MB GB TB PB EB``
(powers of 1000) and IEC ``KiB MiB ...`` (powers of 1024), case-insensitive.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = ["format_bytes", "format_duration", "format_number", "parse_bytes", "parse_duration"]

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000,
    "y": 365 * 86_400_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_PRINT_UNITS = (("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000),
                ("ms", 1_000_000), ("us", 1_000), ("ns", 1))  # fmt: skip


def parse_duration(text: str) -> int:
    """Nanoseconds of a duration such as ``5m``, ``1h30m`` or ``1.5s`` (ValueError if bad)."""
    pos = 0
    total = Decimal(0)
    if not text:
        raise ValueError("empty duration")
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += Decimal(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return int(total)


def format_duration(nanos: int) -> str:
    """A duration in the largest units that spell it exactly (``1h30m``, ``1s500ms``, ``0s``).

    Only units both Go and Prometheus read (``h m s ms us ns``), so every printed duration
    parses back everywhere LogQL takes one.
    """
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    rest = abs(nanos)
    parts = []
    for unit, size in _PRINT_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


_BYTES = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s?(?:([kmgtpe]i?)b?|b)?", re.IGNORECASE)
_BYTE_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def parse_bytes(text: str) -> int:
    """Bytes of a size such as ``512``, ``512B``, ``10kB`` (10,000), ``1.5KiB`` (1,536), ``3M``.

    Units are optional and case-insensitive, as in go-humanize, which Loki uses to read a
    label's value for a byte filter or ``unwrap bytes()``.
    """
    m = _BYTES.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid byte size {text!r}")
    unit = (m.group(2) or "").lower()
    base = 1024 if unit.endswith("i") else 1000
    try:
        value = Decimal(m.group(1)) * base ** _BYTE_POWER[unit[:1]]
    except InvalidOperation:
        raise ValueError(f"invalid byte size {text!r}") from None
    return int(value)


_PRINT_BYTES = (("EiB", 1024**6), ("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3),
                ("MiB", 1024**2), ("KiB", 1024), ("EB", 1000**6), ("PB", 1000**5),
                ("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000))  # fmt: skip


def format_bytes(size: int) -> str:
    """A byte size that parses back to exactly ``size`` (``1536B``, ``10kB``, ``2MiB``)."""
    for unit, base in _PRINT_BYTES:
        if size and size % base == 0:
            return f"{size // base}{unit}"
    return f"{size}B"


def format_number(value: float) -> str:
    """A float as LogQL reads it back exactly: integers without a point, else shortest repr."""
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)
