"""The subset of Go's text/template that ``line_format`` and ``label_format`` use in practice.

Supported: text and ``{{ action }}`` blocks, ``{{- -}}`` trimming, field access (``.label``,
``.__line__`` is not a field: ``__line__`` and ``__timestamp__`` are functions, as in Loki),
field chains (``.a.b``, ``(pipeline).b``),
string and number literals, function calls with arguments, pipes (``.a | ToUpper |
trunc 5``), ``if``/``else if``/``else``/``end`` on truthiness, and ``and``/``or``/``not``/
``eq``/``ne``/``lt``/``gt``/``le``/``ge``. Functions are the Sprig ones Loki documents for
these stages (ToUpper, ToLower, Title, Trim*, Replace, replace, regexReplaceAll,
regexReplaceAllLiteral, default, trunc, substr, printf, contains, hasPrefix, hasSuffix,
indent, nindent, repeat, b64enc, b64dec, urlencode, urldecode, alignLeft, alignRight, len,
add, sub, mul, div, mod, unixEpoch, toDate...).

Why our own: no Go runtime here, and a template a user hands us must never run code; this
interpreter only looks up labels and calls a fixed table of pure functions. A template it
cannot read is a :class:`TemplateError` at parse time, which the query validator reports.

Parse time and run time are split as in Go, because Loki accepts at parse time whatever
Go's parser accepts: Loki runs templates over a map of label name to string with
``missingkey=zero``, so ``.a`` is the label's value or ``""``; a chain ``.a.b`` parses, and
running it fails ("can't evaluate field b in type string": every value is a string), as do
a field given arguments ("a is not a method but has arguments") and a literal given some
("can't give argument to non-function"). Those failures are :class:`TemplateError` from
:meth:`Template.render`, which the pipeline turns into ``__error__="TemplateFormatErr"``
with the line kept, as Loki does. A literal or ``.`` after a pipe is a parse error, as in
Go ("non executable command in pipeline stage 2").
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["Template", "TemplateError", "compile_template"]


class TemplateError(ValueError):
    """A template that cannot be read or run; ``offset`` is where in the template."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


def _go_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("\\z", "\\Z"))


def _printf(fmt: str, *args: Any) -> str:
    out = []
    it = iter(args)
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%" or i + 1 >= len(fmt):
            out.append(ch)
            i += 1
            continue
        m = re.match(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([vsdqfgexXt%])", fmt[i:])
        if not m:
            out.append(ch)
            i += 1
            continue
        flags, width, prec, verb = m.groups()
        i += m.end()
        if verb == "%":
            out.append("%")
            continue
        arg = next(it, "")
        if verb in "dxX":
            spec = f"{flags}{width}{verb}"
            out.append(format(int(float(arg)), spec))
        elif verb in "feg":
            spec = f"{flags}{width}.{prec or 6}{verb}"
            out.append(format(float(arg), spec))
        elif verb == "q":
            out.append('"' + str(arg).replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            text = _text(arg)
            out.append(
                text.ljust(int(width)) if "-" in flags and width else text.rjust(int(width or 0))
            )
    return "".join(out)


def _text(value: Any) -> str:
    if isinstance(value, Mapping):  # Go prints a map with its keys sorted: map[a:1 b:2]
        return "map[" + " ".join(f"{k}:{_text(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value != ""
    return bool(value)


def _trunc(n: Any, s: Any) -> str:
    n, text = int(_num(n)), _text(s)
    return text[:n] if n >= 0 else text[n:]


def _substr(start: Any, end: Any, s: Any) -> str:
    text = _text(s)
    a, b = int(_num(start)), int(_num(end))
    return text[a:b] if b >= 0 else text[a:]


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "ToUpper": lambda s: _text(s).upper(),
    "ToLower": lambda s: _text(s).lower(),
    "upper": lambda s: _text(s).upper(),
    "lower": lambda s: _text(s).lower(),
    "Title": lambda s: _text(s).title(),
    "title": lambda s: _text(s).title(),
    "TrimSpace": lambda s: _text(s).strip(),
    "trim": lambda s: _text(s).strip(),
    "Trim": lambda s, cut: _text(s).strip(_text(cut)),
    "TrimLeft": lambda s, cut: _text(s).lstrip(_text(cut)),
    "TrimRight": lambda s, cut: _text(s).rstrip(_text(cut)),
    "TrimPrefix": lambda s, p: _text(s).removeprefix(_text(p)),
    "TrimSuffix": lambda s, p: _text(s).removesuffix(_text(p)),
    "trimAll": lambda cut, s: _text(s).strip(_text(cut)),
    "trimPrefix": lambda p, s: _text(s).removeprefix(_text(p)),
    "trimSuffix": lambda p, s: _text(s).removesuffix(_text(p)),
    "Replace": lambda s, old, new, n: _text(s).replace(_text(old), _text(new), int(_num(n))),
    "replace": lambda old, new, s: _text(s).replace(_text(old), _text(new)),
    "regexReplaceAll": lambda r, s, repl: _go_regex(_text(r)).sub(
        re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", _text(repl)), _text(s)
    ),
    "regexReplaceAllLiteral": lambda r, s, repl: _go_regex(_text(r)).sub(
        lambda _: _text(repl), _text(s)
    ),
    "default": lambda d, *v: _text(v[0]) if v and _truthy(v[0]) else _text(d),
    "trunc": _trunc,
    "substr": _substr,
    "printf": _printf,
    "contains": lambda sub, s: _text(sub) in _text(s),
    "hasPrefix": lambda p, s: _text(s).startswith(_text(p)),
    "hasSuffix": lambda p, s: _text(s).endswith(_text(p)),
    "indent": lambda n, s: "\n".join(" " * int(_num(n)) + ln for ln in _text(s).split("\n")),
    "nindent": lambda n, s: (
        "\n" + "\n".join(" " * int(_num(n)) + ln for ln in _text(s).split("\n"))
    ),
    "repeat": lambda n, s: _text(s) * int(_num(n)),
    "b64enc": lambda s: base64.b64encode(_text(s).encode()).decode(),
    "b64dec": lambda s: base64.b64decode(_text(s).encode()).decode("utf-8", "replace"),
    "urlencode": lambda s: urllib.parse.quote_plus(_text(s)),
    "urldecode": lambda s: urllib.parse.unquote_plus(_text(s)),
    "alignLeft": lambda n, s: _text(s)[: int(_num(n))].ljust(int(_num(n))),
    "alignRight": lambda n, s: _text(s)[-int(_num(n)) :].rjust(int(_num(n))),
    "len": lambda s: len(_text(s)),
    "add": lambda *a: sum(_num(x) for x in a),
    "sub": lambda a, b: _num(a) - _num(b),
    "mul": lambda a, b: _num(a) * _num(b),
    "div": lambda a, b: _num(a) / _num(b) if _num(b) else 0.0,
    "mod": lambda a, b: _num(a) % _num(b) if _num(b) else 0.0,
    "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1] if a else ""),
    "or": lambda *a: next((x for x in a if _truthy(x)), a[-1] if a else ""),
    "not": lambda a: not _truthy(a),
    "eq": lambda a, *b: any(_text(a) == _text(x) for x in b),
    "ne": lambda a, b: _text(a) != _text(b),
    "lt": lambda a, b: _num(a) < _num(b),
    "le": lambda a, b: _num(a) <= _num(b),
    "gt": lambda a, b: _num(a) > _num(b),
    "ge": lambda a, b: _num(a) >= _num(b),
}

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)|(?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)'
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<pipe>\|)|(?P<open>\()|(?P<close>\)))"
)


_CHAIN = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True)
class _Cmd:
    """One command of a pipeline: a function with its arguments, or an operand (``value``;
    Go parses arguments after one, and running the command is then the error)."""

    kind: str  # "call", "value"
    name: str = ""
    args: tuple[Any, ...] = ()
    value: Any = None


@dataclass(frozen=True)
class _Node:
    kind: str  # "text", "expr", "if"
    text: str = ""
    pipeline: tuple[_Cmd, ...] = ()
    branches: tuple[tuple[tuple[_Cmd, ...] | None, tuple[_Node, ...]], ...] = ()


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    from logpipe.quoting import QuoteError, go_unquote  # noqa: PLC0415 - avoid an import cycle

    try:
        return go_unquote(token)
    except QuoteError as exc:
        raise TemplateError(f"bad string {token}: {exc}") from None


def _operand(m: re.Match[str]) -> Any:
    """("lit", value), ("field", names) (no names: ``.`` itself), or ("fn", name)."""
    if m.group("str") is not None:
        return ("lit", _unquote(m.group("str")))
    if m.group("num") is not None:
        return ("lit", float(m.group("num")))
    if m.group("field") is not None:
        return ("field", tuple(m.group("field").split(".")[1:]) if m.group("field") != "." else ())
    if m.group("name") in ("true", "false"):  # Go's boolean constants, not functions
        return ("lit", m.group("name") == "true")
    return ("fn", m.group("name"))


def _shown(operand: Any) -> str:
    """An operand as the template wrote it, for error messages."""
    kind, value = operand[0], operand[1]
    if kind == "field":
        return "." + ".".join(value)
    if kind == "chain":
        return "(...)." + ".".join(operand[2])
    if kind == "sub":
        return "(...)"
    if kind == "lit":
        return _text(value) if not isinstance(value, str) else f"{value!r}"
    return str(value)


def _go_type(value: Any) -> str:
    """The Go type a value of ours stands for, as Go's error messages name it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    return "string"


def _parse_pipeline(text: str, offset: int) -> tuple[_Cmd, ...]:
    cmds: list[_Cmd] = []
    pos = 0
    current: list[Any] = []

    def finish() -> None:
        if not current:
            raise TemplateError("empty command in pipeline", offset + pos)
        head, *rest = current
        if head[0] == "fn":
            if head[1] not in FUNCTIONS and head[1] not in ("__line__", "__timestamp__"):
                raise TemplateError(f'function "{head[1]}" not defined', offset + pos)
            cmds.append(_Cmd("call", head[1], tuple(rest)))
        else:
            if cmds and (head[0] == "lit" or head == ("field", ())):
                raise TemplateError(f"non executable command in pipeline stage {len(cmds) + 1}",
                                    offset + pos)  # fmt: skip
            cmds.append(_Cmd("value", args=tuple(rest), value=head))
        current.clear()

    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise TemplateError(f"unexpected {text[pos:].strip()[:10]!r} in action", offset + pos)
        pos = m.end()
        if m.group("pipe"):
            finish()
        elif m.group("open"):
            depth, start = 1, pos
            while pos < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[pos], 0)
                pos += 1
            if depth:
                raise TemplateError("unclosed parenthesis", offset + start)
            sub = ("sub", _parse_pipeline(text[start : pos - 1], offset + start))
            chain = _CHAIN.match(text, pos)  # (pipeline).a.b: a chain on the pipeline's value
            if chain is not None:
                pos = chain.end()
                current.append(("chain", sub, tuple(chain.group().split(".")[1:])))
            else:
                current.append(sub)
        elif m.group("close"):
            raise TemplateError("unexpected )", offset + pos)
        else:
            current.append(_operand(m))
    finish()
    return tuple(cmds)


def _parse(source: str) -> tuple[_Node, ...]:
    """Template source -> nodes (``if`` blocks nested)."""
    root: list[_Node] = []
    stack: list[tuple[list[Any], list[_Node]]] = []  # (branches, current body) of open ifs
    body = root
    pos = 0
    for m in _ACTION.finditer(source):
        text = source[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        if text:
            body.append(_Node("text", text=text))
        pos = m.end()
        if m.group(3):
            rest = source[pos:]
            pos += len(rest) - len(rest.lstrip())
        action = m.group(2).strip()
        word = action.split(None, 1)[0] if action else ""
        if word == "if":
            branches: list[Any] = [(_parse_pipeline(action[2:], m.start(2)), [])]
            stack.append((branches, body))
            body = branches[-1][1]
        elif word == "else":
            if not stack:
                raise TemplateError("else without if", m.start())
            branches = stack[-1][0]
            cond = action[4:].strip()
            if cond.startswith("if "):
                branches.append((_parse_pipeline(cond[3:], m.start(2)), []))
            else:
                branches.append((None, []))
            body = branches[-1][1]
        elif word == "end":
            if not stack:
                raise TemplateError("end without if", m.start())
            branches, body = stack.pop()
            body.append(_Node("if", branches=tuple((c, tuple(b)) for c, b in branches)))
        elif word in ("range", "with", "define", "template", "block"):
            raise TemplateError(f"{{{{{word}}}}} is not supported in LogQL templates", m.start())
        elif action.startswith("/*"):
            continue
        else:
            body.append(_Node("expr", pipeline=_parse_pipeline(action, m.start(2))))
    if stack:
        raise TemplateError("unclosed if: missing {{end}}", len(source))
    tail = source[pos:]
    if tail:
        body.append(_Node("text", text=tail))
    return tuple(root)


class Template:
    """A compiled template: ``render(labels, line, ts_ns)`` fills it in."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._nodes = _parse(source)

    def render(self, labels: Mapping[str, str], line: str = "", ts_ns: int = 0) -> str:
        out: list[str] = []
        self._run(self._nodes, labels, line, ts_ns, out=out)
        return "".join(out)

    def _run(self, nodes: tuple[_Node, ...], labels: Mapping[str, str], line: str, ts: int,
             *, out: list[str]) -> None:  # fmt: skip
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "expr":
                out.append(_text(self._pipe(node.pipeline, labels, line, ts)))
            else:
                for cond, body in node.branches:
                    if cond is None or _truthy(self._pipe(cond, labels, line, ts)):
                        self._run(body, labels, line, ts, out=out)
                        break

    def _value(self, arg: Any, labels: Mapping[str, str], line: str, ts: int) -> Any:
        kind, value = arg[0], arg[1]
        if kind == "lit":
            return value
        if kind == "field":
            return _fields(dict(labels), value, arg)
        if kind == "chain":
            return _fields(self._value(value, labels, line, ts), arg[2], arg)
        if kind == "sub":
            return self._pipe(value, labels, line, ts)
        return self._call(value, (), labels, line, ts, piped=None)

    def _operand_cmd(self, cmd: _Cmd, labels: Mapping[str, str], line: str, ts: int,
                     piped: Any) -> Any:  # fmt: skip
        """An operand as a command; given arguments (or a piped value) it fails as Go's
        ``evalCommand`` does."""
        if not cmd.args and piped is _NOTHING:
            return self._value(cmd.value, labels, line, ts)
        kind = cmd.value[0]
        if kind not in ("field", "chain") or (kind == "field" and not cmd.value[1]):
            raise TemplateError(f"can't give argument to non-function {_shown(cmd.value)}")
        names = cmd.value[1] if kind == "field" else cmd.value[2]
        base = dict(labels) if kind == "field" else self._value(cmd.value[1], labels, line, ts)
        receiver = _fields(base, names[:-1], cmd.value)
        if isinstance(receiver, Mapping):
            raise TemplateError(f"at <{_shown(cmd.value)}>: {names[-1]} is not a method but "
                                "has arguments")  # fmt: skip
        raise TemplateError(f"at <{_shown(cmd.value)}>: can't evaluate field {names[-1]} in "
                            f"type {_go_type(receiver)}")  # fmt: skip

    def _call(self, name: str, args: tuple[Any, ...], labels: Mapping[str, str], line: str,
              ts: int, *, piped: Any) -> Any:  # fmt: skip
        values = [self._value(a, labels, line, ts) for a in args]
        if piped is not _NOTHING and piped is not None:
            values.append(piped)
        if name == "__line__":
            return line
        if name == "__timestamp__":
            return ts
        if name in ("true", "false"):
            return name == "true"
        try:
            return FUNCTIONS[name](*values)
        except (TypeError, ValueError, re.error, ZeroDivisionError) as exc:
            raise TemplateError(f"error calling {name}: {exc}") from None

    def _pipe(self, cmds: tuple[_Cmd, ...], labels: Mapping[str, str], line: str, ts: int) -> Any:
        result: Any = _NOTHING
        for cmd in cmds:
            if cmd.kind == "value":
                result = self._operand_cmd(cmd, labels, line, ts, result)
            else:
                result = self._call(cmd.name, cmd.args, labels, line, ts, piped=result)
        return result


_NOTHING = object()


def _fields(receiver: Any, names: tuple[str, ...], operand: Any) -> Any:
    """``receiver.a.b...``: a map gives the key's value (``""`` when missing: Loki's
    ``missingkey=zero``); anything else has no fields."""
    for name in names:
        if not isinstance(receiver, Mapping):
            raise TemplateError(f"at <{_shown(operand)}>: can't evaluate field {name} in type "
                                f"{_go_type(receiver)}")  # fmt: skip
        receiver = receiver.get(name, "")
    return receiver


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """A cached :class:`Template` (``line_format`` runs the same one on every line)."""
    return Template(source)
