"""Token-class masking: decide, before any statistics, which parts of a token are variables.

Why mask first: Drain-family miners route lines through a tree keyed by their first tokens
and compare token by token. A raw id or number in a key position splits one event into
thousands of clusters, and a number that happens to repeat looks constant. Masking the
obvious variables (numbers, hex, IPs, ids, paths, URLs, UUIDs, dates, durations, sizes)
first makes routing and similarity see the event's constant text only.

Masking works on *pieces*: a whitespace token is cut at punctuation that separates values in
logs (``, ; : = | " ' [ ] ( ) { } < > !``), and each word is cut again at the characters
that join parts of one value (``- @ # $ % & + / .``). A piece is a variable when it is
numeric, hex, or an identifier with many digits; a word that is a path or a URL is a
variable as a whole. The result keeps every delimiter, so the masked token still reads like
the original (``10.0.0.1:8080`` becomes ``<*>:<*>``), which is also the convention of the
Loghub-2.0 ground truth.

Words with few digits and letters around them (``eth0``, ``ssh2``, ``IPv6``, ``utf8``) stay
constant: they name things rather than count them. Variables that carry no digits
(user names, host names) are left to the miner's statistics.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["RE2_WHITESPACE", "VAR", "mask_content", "mask_token", "premask"]

VAR = "<*>"

# Separators between values inside a whitespace token.
_OUTER = re.compile(r"""([,;:=|"'\[\](){}<>!?]+)""")
# Joiners inside one value: a run of these splits a word into pieces. A '-' right after '_'
# belongs to the id (``blk_-4242``), so it does not split.
_INNER = re.compile(r"((?:(?<!_)-)|[@#$%&+/.])")
_HAS_DIGIT = re.compile(r"\d")
_NUMBERS_JOINED = re.compile(r"[0-9@#$%&+/.-]+")
_DIGIT_RUN = re.compile(r"[0-9]+")
_DIGITS = re.compile(r"\d")
_HEX = re.compile(r"(?:0[xX])?[0-9a-fA-F]+")
_PATH = re.compile(r"(?:/[^/]+)+/?|~(?:/[^/]+)+/?|[A-Za-z]:\\\S+")
_WS = re.compile(r"\s+")
_NUMBER_UNIT = re.compile(
    r"\d+(?:\.\d+)?(?:ns|us|µs|ms|s|sec|secs|m|min|mins|h|hr|hrs|d|b|B|kb|KB|kB|K|k|mb|MB|M|gb|GB|G|tb|TB|T|KiB|MiB|GiB|TiB|%)"
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_SIGNED_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# host:port (``proxy.example.org:8080``, ``node-7:50010``): the host is a value too.
_HOST_PORT = re.compile(r"(?<![\w./-])[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)+:\d+(?!\w|\.\w)")
# Calendar words are values: a month or weekday name in a log line is part of a date.
_CALENDAR = frozenset(
    [
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Sept",
        "Oct",
        "Nov",
        "Dec",
        "January",
        "February",
        "March",
        "April",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ]
)


def _is_variable_piece(piece: str) -> bool:
    """Whether one piece of a word (no joiners inside) is a value rather than a name."""
    if not _HAS_DIGIT.search(piece):
        return False
    if piece.isdigit():
        return True
    if len(piece) >= 4 and _HEX.fullmatch(piece):
        return True
    if piece[:2] in ("0x", "0X") and _HEX.fullmatch(piece):
        return True
    if _NUMBER_UNIT.fullmatch(piece):
        return True
    return len(_DIGITS.findall(piece)) >= 3


def _mask_word(word: str) -> str:
    """Mask one word (a run of characters between outer separators)."""
    if not word:
        return word
    if word.isdecimal():
        return VAR
    if word.startswith("//") and len(word) > 2:
        return "//" + VAR
    if word[0] in "/~" and _PATH.fullmatch(word):
        return VAR
    if not _HAS_DIGIT.search(word):
        return VAR if word in _CALENDAR else word
    if _SIGNED_NUMBER.fullmatch(word) or _UUID.fullmatch(word):
        return VAR
    if "_" in word and any(seg.isdigit() for seg in word.split("_")):
        return VAR  # ``rdd_2_0``, ``task_12_m``: an id built from a name and counters
    if _NUMBERS_JOINED.fullmatch(word):
        # only digit runs and joiners (``1514038##6993##5483``): every run is a value; the
        # same result as the piece loop below, without it
        return _collapse_dotted(_DIGIT_RUN.sub(VAR, word))
    parts = _INNER.split(word)
    changed = False
    for i in range(0, len(parts), 2):
        piece = parts[i]
        if piece and _is_variable_piece(piece):
            parts[i] = VAR
            changed = True
    if not changed:
        return word
    joined = _collapse_dotted("".join(parts))
    return joined


def _collapse_dotted(text: str) -> str:
    """``<*>.<*>.<*>`` is one dotted value (an IPv4 address, a version, a float)."""
    while "<*>.<*>" in text:
        text = text.replace("<*>.<*>", VAR)
    return text


@lru_cache(maxsize=1 << 16)
def mask_token(token: str) -> str:
    """Mask the variable parts of one whitespace-free token (cached: tokens repeat a lot)."""
    if _URL.match(token):
        scheme, _, _rest = token.partition("://")
        return scheme + "://" + VAR
    if ":" in token:
        token = _HOST_PORT.sub("<*>:<*>", token)
    parts = _OUTER.split(token)
    for i in range(0, len(parts), 2):
        parts[i] = _mask_word(parts[i])
    return "".join(parts)


_HTTP_VERSION = re.compile(r"HTTP/\d(?:\.\d)?([^\w*<>]*)")


def mask_content(content: str) -> list[str]:
    """The masked tokens of a message.

    One rule spans tokens: in an HTTP request line (``"GET /a/b?c=1 HTTP/1.1"``) the target
    and the protocol version are one value, so ``<target> HTTP/1.1"`` becomes ``<*>"``.
    """
    raw = content.split()
    tokens = [VAR if t.isdecimal() else mask_token(t) for t in raw]
    if "HTTP/" in content:
        i = len(raw) - 1
        while i > 0:
            m = _HTTP_VERSION.fullmatch(raw[i])
            prev = tokens[i - 1]
            whole = prev.startswith(VAR) or "://" in prev  # a path or URL target
            if m and (whole or prev.endswith(VAR)):
                tokens[i - 1] = ("" if whole else prev[:-3]) + VAR + m.group(1)
                del tokens[i]
            i -= 1
    return tokens


# Whole words that masking turns into exactly ``<*>``: plain numbers, ids such as
# ``blk_-4242`` and absolute paths, between separators. RE2 has no lookaround, so separators
# are captured and put back, and passes repeat for words that share a separator. A number
# before ':' is only rewritten together with what follows, because ``host:port`` is masked
# as a whole and a changed host could change that.
# The characters Python's str.split() and ``\s`` treat as whitespace, spelled out for RE2
# (whose ``\s`` is ASCII only): kernels and Python must agree on where tokens end.
RE2_WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_SEP = RE2_WHITESPACE + r""",;:=|"'\[\](){}<>!?"""
_LEAD = RE2_WHITESPACE + r""",;=|"'\[\](){}<>!?"""
_NUM = r"[-+]?[0-9]+(?:\.[0-9]+)*"
_UNUM = r"[0-9]+(?:\.[0-9]+)*"  # after ':' signs stay: ``+5`` must not start a host
_PATH_RE2 = rf"(?:/[^/{_SEP}]+)+/?"
_PREMASK_TIME = rf"(^|[{_LEAD}]){_NUM}:{_UNUM}:{_UNUM}([{_LEAD}]|$)"
# ``/10.0.0.1:50010``: a path cannot be the host of a host:port, so path and port go too.
_PREMASK_PAIR = rf"(^|[{_LEAD}])(?:{_NUM}|{_PATH_RE2}):{_UNUM}([{_LEAD}]|$)"
_PREMASK_NUM_KEY = rf"(^|[{_LEAD}]){_NUM}:([^0-9+-]|$)"
_PREMASK = (
    rf"(^|[{_LEAD}])"
    rf"(?:{_NUM}"
    r"|[A-Za-z]+_-?[0-9]{3,}"
    rf"|{_PATH_RE2})"
    rf"([{_LEAD}]|$)"
)
# ``name:123``: a number after ':' whose key has no '.' or '-' cannot be a host's port.
_PREMASK_KEYED = rf"(^|[{_LEAD}])([A-Za-z0-9_]+|<\*>):{_UNUM}([{_LEAD}]|$)"


def premask(contents: pa.Array) -> pa.Array:
    """Replace plain-number words with ``<*>`` in a whole Arrow array, in C++.

    Why: most messages of a big log differ only in their numbers, so after this pass many of
    them are identical and are masked and mined once. It only rewrites words that
    :func:`mask_content` turns into exactly ``<*>`` anyway, so
    ``mask_content(premask(x)) == mask_content(x)`` (a property test holds us to it).
    """
    contents = pc.replace_substring_regex(contents, _PREMASK_TIME, r"\1<*>:<*>:<*>\2")
    contents = pc.replace_substring_regex(contents, _PREMASK_PAIR, r"\1<*>:<*>\2")
    contents = pc.replace_substring_regex(contents, _PREMASK_NUM_KEY, r"\1<*>:\2")
    for _ in range(2):
        contents = pc.replace_substring_regex(contents, _PREMASK, r"\1<*>\2")
    return pc.replace_substring_regex(contents, _PREMASK_KEYED, r"\1\2:<*>\3")
