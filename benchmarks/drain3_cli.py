"""Drain3 end to end, as a command: the speed baseline for ``logpipe parse``.

Why a script of its own: the parsing benchmark times our CLI as a user runs it (start the
interpreter, read the file, split headers, mine templates, write the Loghub CSVs). A fair
baseline does the same work with Drain3 (github.com/logpai/Drain3) in the same way, so this
script:

1. reads the log file;
2. splits each line into header fields and ``Content`` with the Loghub format regex, built
   here from the format string (``<Date> <Time> <Content>``) the way Loghub's own parsers build
   it, so the baseline depends on nothing of ours;
3. mines templates with ``drain3.TemplateMiner`` using the masking instructions of Drain3's
   example configuration (``examples/drain3.ini``: ID, IP, SEQ, HEX and NUM masks; its
   ``executed cmd`` example mask is left out as specific to that demo), every other setting at
   Drain3's defaults;
4. writes ``<name>_structured.csv`` (LineId, header fields, Content, EventId, EventTemplate,
   ParameterList) with each line's *final* cluster template, and ``<name>_templates.csv``
   (EventId, EventTemplate, Occurrences), like ``logpipe parse``.

Masks (``<:NUM:>``) and Drain3's wildcard (``<:*:>`` with this prefix/suffix) are written as
Loghub's ``<*>``. Lines the format does not match keep empty header fields and the whole line as
``Content`` (Loghub's loader drops them; we keep every line, as ``logpipe parse`` does).

Usage::

    python benchmarks/drain3_cli.py HDFS_20000.log --log-format '<Date> <Time> <Content>' --out DIR
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

__all__ = [
    "EXAMPLE_MASKING",
    "MASK_PREFIX",
    "MASK_SUFFIX",
    "compile_loghub_format",
    "example_config",
    "main",
    "to_loghub_template",
]

# Drain3's examples/drain3.ini, [MASKING] section: (regex, mask name), in the file's order.
# Order matters: the masks are applied one after the other to the message.
_EDGE_BEFORE = r"((?<=[^A-Za-z0-9])|^)"
_EDGE_AFTER = r"((?=[^A-Za-z0-9])|$)"
EXAMPLE_MASKING: tuple[tuple[str, str], ...] = (
    (_EDGE_BEFORE + r"(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))" + _EDGE_AFTER, "ID"),
    (_EDGE_BEFORE + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})" + _EDGE_AFTER, "IP"),
    (_EDGE_BEFORE + r"([0-9a-f]{6,} ?){3,}" + _EDGE_AFTER, "SEQ"),
    (_EDGE_BEFORE + r"([0-9A-F]{4} ?){4,}" + _EDGE_AFTER, "SEQ"),
    (_EDGE_BEFORE + r"(0x[a-f0-9A-F]+)" + _EDGE_AFTER, "HEX"),
    (_EDGE_BEFORE + r"([\-\+]?\d+)" + _EDGE_AFTER, "NUM"),
)
MASK_PREFIX = "<:"
MASK_SUFFIX = ":>"
# A mask or Drain3's wildcard as written with the prefix/suffix above: <:NUM:>, <:*:>.
_MASK_TOKEN = re.compile(re.escape(MASK_PREFIX) + r"[A-Z*]+" + re.escape(MASK_SUFFIX))


def example_config() -> Any:
    """A ``TemplateMinerConfig`` at Drain3's defaults plus its example config's masking."""
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, name) for p, name in EXAMPLE_MASKING]
    config.mask_prefix = MASK_PREFIX
    config.mask_suffix = MASK_SUFFIX
    return config


def to_loghub_template(drain3_template: str) -> str:
    """Write Drain3's masks and wildcard (``<:NUM:>``, ``<:*:>``) as Loghub's ``<*>``."""
    return _MASK_TOKEN.sub("<*>", drain3_template)


def compile_loghub_format(log_format: str) -> tuple[list[str], re.Pattern[str]]:
    """Loghub's format-string-to-regex rule: ``<Field>`` -> a lazy named group, literal text
    kept as regex with each run of spaces matching any run of whitespace, anchored both ends.
    """
    fields: list[str] = []
    pieces: list[str] = []
    for i, part in enumerate(re.split(r"(<[^<>]+>)", log_format)):
        if i % 2 == 0:
            pieces.append(re.sub(r" +", r"\\s+", part))
        else:
            name = part[1:-1]
            fields.append(name)
            pieces.append(f"(?P<{name}>.*?)")
    if "Content" not in fields:
        raise ValueError(f"log format {log_format!r} has no <Content> field")
    return fields, re.compile("^" + "".join(pieces) + "$")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="drain3_cli", description="Drain3 end to end: log file -> Loghub structured CSVs."
    )
    parser.add_argument("log_file", type=Path)
    parser.add_argument("--log-format", required=True, help="Loghub format string.")
    parser.add_argument("--out", type=Path, required=True, help="Output directory.")
    parser.add_argument("--quiet", action="store_true", help="No summary line.")
    parser.add_argument(
        "--version", action="version", version=f"drain3_cli (drain3 {version('drain3')})"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse one log file with Drain3 and write the two CSVs; 0 ok, 1 failure, 2 usage."""
    args = _parse_args(argv)
    started = time.perf_counter()
    try:
        header_fields, regex = compile_loghub_format(args.log_format)
    except (ValueError, re.error) as exc:
        print(f"drain3_cli: error: {exc}", file=sys.stderr)
        return 2
    try:
        text = args.log_file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"drain3_cli: error: {args.log_file}: {exc.strerror}", file=sys.stderr)
        return 1
    fields = [f for f in header_fields if f != "Content"]

    headers: list[list[str]] = []
    contents: list[str] = []
    lines = text.split("\n")  # "\n" only, as Loghub's line-by-line reading (not splitlines)
    if lines and lines[-1] == "":
        lines.pop()
    for raw_line in lines:
        line = raw_line.strip()
        match = regex.match(line)
        if match is None:
            headers.append([""] * len(fields))
            contents.append(line)
        else:
            headers.append([match.group(f) for f in fields])
            contents.append(match.group("Content"))

    miner = TemplateMiner(config=example_config())
    cluster_ids = [miner.add_log_message(c)["cluster_id"] for c in contents]
    clusters = miner.drain.id_to_cluster
    raw_templates = {cid: clusters[cid].get_template() for cid in set(cluster_ids)}
    templates = {cid: to_loghub_template(t) for cid, t in raw_templates.items()}

    args.out.mkdir(parents=True, exist_ok=True)
    name = args.log_file.name
    with (args.out / f"{name}_structured.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["LineId", *fields, "Content", "EventId", "EventTemplate", "ParameterList"])
        for line_id, (head, content, cid) in enumerate(
            zip(headers, contents, cluster_ids, strict=True), start=1
        ):
            # The cheaper, Loghub-like extraction: each wildcard or mask matches lazily.
            params = miner.extract_parameters(raw_templates[cid], content, exact_matching=False)
            values = [p.value for p in params] if params else []
            writer.writerow([line_id, *head, content, f"E{cid}", templates[cid], str(values)])
    counts = Counter(cluster_ids)
    with (args.out / f"{name}_templates.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["EventId", "EventTemplate", "Occurrences"])
        for cid in sorted(counts):
            writer.writerow([f"E{cid}", templates[cid], counts[cid]])

    if not args.quiet:
        secs = time.perf_counter() - started
        print(f"{name}: {len(contents)} lines, {len(counts)} templates, {secs:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
