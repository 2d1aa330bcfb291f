"""Go string literals, as LogQL and Loki's label strings write them.

Why our own: LogQL strings are Go literals (``"a\\tb"``, ``"\\u00e9"``, `` `raw` ``), and Loki
prints label values with Go's ``strconv.Quote``. Python's ``repr`` and ``json`` differ in
small ways (``\\x`` escapes, which characters are printable), so a query printed by Python
would not read back the same in Loki, nor Loki's output in ours.
"""

from __future__ import annotations

import unicodedata

__all__ = ["QuoteError", "go_quote", "go_unquote"]

_SIMPLE = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_REVERSE = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\", '"': '\\"'}  # fmt: skip


class QuoteError(ValueError):
    """A malformed Go string literal; ``offset`` is where in the literal it goes wrong."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def _printable(ch: str) -> bool:
    """Go's ``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols and ASCII space."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def go_quote(text: str) -> str:
    """``text`` as Go's ``strconv.Quote`` writes it (double quotes, escapes as Go does)."""
    out = ['"']
    for ch in text:
        escaped = _REVERSE.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif _printable(ch):
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # a lone surrogate is not valid UTF-8: Go's U+FFFD
            out.append("\\ufffd")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_unquote(literal: str) -> str:
    """The value of a Go string literal: ``"..."`` with escapes, or `` `...` `` taken as is.

    Raises :class:`QuoteError` with the offset (into ``literal``) of the first problem.
    """
    if len(literal) >= 2 and literal[0] == literal[-1] == "`":
        body = literal[1:-1]
        if "`" in body:
            raise QuoteError("a raw string cannot contain a backtick", 1 + body.index("`"))
        return body.replace("\r", "")  # Go drops carriage returns from raw strings
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise QuoteError("a string must be enclosed in double quotes or backticks", 0)
    out: list[str] = []
    i = 1
    end = len(literal) - 1
    while i < end:
        ch = literal[i]
        if ch == "\n":
            raise QuoteError("newline in string", i)
        if ch == '"':
            raise QuoteError("unescaped double quote in string", i)
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= end:
            raise QuoteError("string ends with a lone backslash", i)
        kind = literal[i + 1]
        if kind in _SIMPLE and kind != "'":
            out.append(_SIMPLE[kind])
            i += 2
        elif kind in "xuU01234567":
            width = {"x": 2, "u": 4, "U": 8}.get(kind, 3)
            start = i + 1 if kind in "01234567" else i + 2
            digits = literal[start : start + width]
            base = 8 if kind in "01234567" else 16
            try:
                if len(digits) != width:
                    raise ValueError
                value = int(digits, base)
            except ValueError:
                raise QuoteError(f"invalid escape \\{literal[i + 1 : start + width]}", i) from None
            if kind in "uU" and (value > 0x10FFFF or 0xD800 <= value <= 0xDFFF):
                raise QuoteError(f"escape \\{kind}{digits} is not a valid code point", i)
            if kind not in "uU" and value > 0xFF:
                raise QuoteError(f"octal escape \\{digits} is above 255", i)
            out.append(chr(value))
            i = start + width
        else:
            raise QuoteError(f"unknown escape sequence \\{kind}", i)
    return "".join(out)
