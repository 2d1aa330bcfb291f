"""The labelled data sets of the anomaly benchmark, as windows and splits every detector shares.

* **HDFS** (``raw/HDFS_20000.log`` + ``anomaly/hdfs/anomalous_blocks.txt``): one session per
  block id (``blk_-?\\d+``; a line naming several blocks belongs to each), labelled anomalous
  when the block is listed; 1,782 blocks, 43 anomalous. Split by each block's first event
  time (:func:`~logpipe.detect.splits.chronological_split`, no purging).
* **BGL** (``loghub-2k/BGL/BGL_2k.log``): the first column is the label (``-`` normal, an
  alert category otherwise); it is cut off *before* parsing, so no detector ever sees it.
  Windows of :data:`BGL_WINDOW_S` seconds sliding by :data:`BGL_STEP_S` (see
  :func:`bgl_from_lines` for why), labelled anomalous when an alert line falls inside; the
  split purges windows that straddle a cut.
* **synthetic** (:mod:`logpipe.detect.synthetic`): sessions keyed by ``sid=...``, labelled by
  the generator; split like HDFS.

Each loader has a pure core over lines already in memory (``*_from_lines``, what the tests
use) and a thin reader for the shared data directory, which raises
:class:`~logpipe.errors.InputError` naming the missing file when the data is absent.
Every line is parsed once by :class:`~logpipe.detect.events.EventParser` (whole input, final
templates); lines the format does not match, lines without a session key and events beyond a
window's bound are counted in :attr:`Dataset.counts`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.detect.events import EventParser, read_lines
from logpipe.detect.grouping import (
    DEFAULT_MAX_EVENTS,
    Windowing,
    label_by_key,
    regex_keys,
    sessions,
    time_windows,
)
from logpipe.detect.splits import Split, chronological_split
from logpipe.detect.synthetic import (
    SESSION_KEY_PATTERN,
    SYNTHETIC_FORMAT,
    SyntheticConfig,
    SyntheticLog,
    generate,
)
from logpipe.detect.windows import Window
from logpipe.errors import InputError
from logpipe.timestamps import LAYOUTS, PresetTime

__all__ = [
    "BGL_FORMAT",
    "BGL_LOG",
    "BGL_STEP_S",
    "BGL_WINDOW_S",
    "DATASETS",
    "HDFS_BLOCK_PATTERN",
    "HDFS_LABELS",
    "HDFS_LOG",
    "Dataset",
    "Split",
    "Windowing",
    "bgl_from_lines",
    "chronological_split",
    "hdfs_from_lines",
    "load",
    "load_bgl",
    "load_hdfs",
    "load_synthetic",
    "regex_keys",
    "sessions",
    "synthetic_from_log",
    "time_windows",
]

DATASETS = ("hdfs", "bgl", "synthetic")

HDFS_LOG = Path("raw/HDFS_20000.log")
HDFS_LABELS = Path("anomaly/hdfs/anomalous_blocks.txt")
HDFS_BLOCK_PATTERN = r"(?P<key>blk_-?\d+)"
BGL_LOG = Path("loghub-2k/BGL/BGL_2k.log")
BGL_FORMAT = "<Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>"
"""Loghub's BGL format without its first field (the label, cut off before parsing)."""
BGL_TIME = PresetTime(("Timestamp",), LAYOUTS["epoch_s"])

BGL_WINDOW_S = 3600
BGL_STEP_S = 1800
"""BGL windows: 1 h sliding by 30 min. See :func:`bgl_from_lines`."""


@dataclass(frozen=True)
class Dataset:
    """Windows of one data set with their split, and how the data was read.

    ``templates`` maps each event id to its template text; ``parser`` holds the log format
    and the miner after the whole input, and ``windowing`` how lines became windows: a model
    saves both (:meth:`EventParser.save_state`, :meth:`Windowing.to_dict`) to cut new data
    the same way. ``counts`` holds what was skipped or bounded (``unmatched_lines``,
    ``unkeyed_lines``, ``dropped_events``...); ``parse_secs`` is the time to build the
    events and windows (frame, time, mine, resolve, group).
    """

    name: str
    windows: tuple[Window, ...]
    split: Split
    lines: int
    parse_secs: float
    templates: dict[str, str]
    parser: EventParser
    windowing: Windowing
    counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        anomalous = sum(1 for w in self.windows if w.label == 1)
        return (
            f"{self.name}: {self.lines:,} lines, {len(self.templates)} events, "
            f"{len(self.windows):,} windows ({anomalous} anomalous); {self.split.describe()}"
        )


def _need(path: Path) -> Path:
    if not path.is_file():
        raise InputError(
            "data file not found; set LOGPIPE_SHARED_DATA to the shared data directory",
            path=str(path),
        )
    return path


# ------------------------------------------------------------------------------ common


def _build(
    name: str,
    parser: EventParser,
    lines: pa.Array,
    windowing: Windowing,
    *,
    line_labels: np.ndarray | None = None,
    anomalous_keys: Collection[str] | None = None,
    train_fraction: float,
    validation_fraction: float,
) -> Dataset:
    """Parse, window, label and split: the one path every data set takes."""
    started = time.perf_counter()
    parsed = parser.parse(lines)
    windows = windowing.windows(parsed, labels=line_labels)
    parse_secs = time.perf_counter() - started
    if anomalous_keys is not None:
        windows = label_by_key(windows, anomalous_keys)
    split = chronological_split(
        windows,
        train_fraction=train_fraction,
        validation_fraction=validation_fraction,
        purge=windowing.kind == "time",
    )
    counts = {
        "unmatched_lines": parsed.unmatched,
        "untimed_lines": parsed.untimed,
        "dropped_events": sum(w.dropped for w in windows),
    }
    if windowing.key_pattern is not None:
        found = pc.count_substring_regex(parsed.content, pattern=windowing.key_pattern)
        counts["unkeyed_lines"] = int(pc.sum(pc.equal(found, 0)).as_py() or 0)
    return Dataset(
        name=name,
        windows=tuple(windows),
        split=split,
        lines=len(parsed),
        parse_secs=parse_secs,
        templates=parsed.templates_by_event(),
        parser=parser,
        windowing=windowing,
        counts=counts,
    )


def _strings(lines: pa.Array | Sequence[str]) -> pa.Array:
    return lines if isinstance(lines, pa.Array) else pa.array(list(lines), pa.string())


# ------------------------------------------------------------------------------ HDFS


def hdfs_from_lines(
    lines: pa.Array | Sequence[str],
    anomalous_blocks: Collection[str],
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    train_fraction: float = 0.5,
    validation_fraction: float = 0.2,
) -> Dataset:
    """HDFS lines into block sessions labelled from ``anomalous_blocks``."""
    return _build(
        "hdfs",
        EventParser(preset="HDFS"),
        _strings(lines),
        Windowing("session", key_pattern=HDFS_BLOCK_PATTERN, max_events=max_events),
        anomalous_keys=set(anomalous_blocks),
        train_fraction=train_fraction,
        validation_fraction=validation_fraction,
    )


def load_hdfs(data_dir: Path, *, max_events: int = DEFAULT_MAX_EVENTS) -> Dataset:
    """:func:`hdfs_from_lines` over ``HDFS_20000.log`` and its block labels in ``data_dir``."""
    log, labels = _need(data_dir / HDFS_LOG), _need(data_dir / HDFS_LABELS)
    blocks = {b.strip() for b in labels.read_text(encoding="utf-8").splitlines() if b.strip()}
    return hdfs_from_lines(read_lines(log), blocks, max_events=max_events)


# ------------------------------------------------------------------------------ BGL


_BGL_LABEL = r"^(?P<label>\S+)\s(?P<rest>.*)$"


def split_label_column(lines: pa.Array) -> tuple[pa.Array, np.ndarray, int]:
    """Cut the label column off BGL-style lines: ``(rest, 0/1 per line, unlabelled)``.

    A line without a label column (blank) keeps its text, counts as normal and is counted.
    """
    extracted = pc.extract_regex(lines, pattern=_BGL_LABEL)
    valid = pc.is_valid(extracted)
    rest = pc.if_else(valid, extracted.field("rest"), lines)
    label_text = pc.fill_null(pc.if_else(valid, extracted.field("label"), "-"), "-")
    labels = pc.not_equal(label_text, "-").to_numpy(zero_copy_only=False).astype(np.int64)
    return rest, labels, len(lines) - int(pc.sum(valid).as_py() or 0)


def bgl_from_lines(
    lines: pa.Array | Sequence[str],
    *,
    window_s: int = BGL_WINDOW_S,
    step_s: int = BGL_STEP_S,
    max_events: int = DEFAULT_MAX_EVENTS,
    train_fraction: float = 0.5,
    validation_fraction: float = 0.2,
) -> Dataset:
    """BGL lines (label column first) into labelled sliding time windows.

    Why 1 h windows sliding by 30 min: BGL_2k is a 2,000-line sample spread over 214 days
    (about 9 lines a day, in bursts), so windows of minutes would mostly hold one line and
    windows of a day would mix unrelated bursts; an hour holds one burst, and a half-hour
    step lets a burst that crosses a boundary appear whole in some window. The same size
    serves every detector; it was fixed before any detector was run on it.
    """
    rest, line_labels, unlabelled = split_label_column(_strings(lines))
    data = _build(
        "bgl",
        EventParser(BGL_FORMAT, time=BGL_TIME),
        rest,
        Windowing("time", size_s=window_s, step_s=step_s, max_events=max_events),
        line_labels=line_labels,
        train_fraction=train_fraction,
        validation_fraction=validation_fraction,
    )
    data.counts["unlabelled_lines"] = unlabelled
    data.counts["alert_lines"] = int(line_labels.sum())
    return data


def load_bgl(data_dir: Path, *, max_events: int = DEFAULT_MAX_EVENTS) -> Dataset:
    """:func:`bgl_from_lines` over Loghub's ``BGL_2k.log`` in ``data_dir``."""
    return bgl_from_lines(read_lines(_need(data_dir / BGL_LOG)), max_events=max_events)


# ------------------------------------------------------------------------------ synthetic


def synthetic_from_log(
    log: SyntheticLog,
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    train_fraction: float = 0.5,
    validation_fraction: float = 0.2,
) -> Dataset:
    """A generated log, parsed like real data, as ``sid`` sessions with the generator's labels."""
    return _build(
        "synthetic",
        EventParser(SYNTHETIC_FORMAT),
        pa.array(log.lines, pa.string()),
        Windowing("session", key_pattern=SESSION_KEY_PATTERN, max_events=max_events),
        anomalous_keys={sid for sid, label in log.labels.items() if label},
        train_fraction=train_fraction,
        validation_fraction=validation_fraction,
    )


def load_synthetic(
    config: SyntheticConfig | None = None, *, max_events: int = DEFAULT_MAX_EVENTS
) -> Dataset:
    """Generate (seeded) and load a synthetic relational-anomaly data set."""
    return synthetic_from_log(generate(config), max_events=max_events)


def load(name: str, data_dir: Path, *, quick: bool = False) -> Dataset:
    """One of :data:`DATASETS` by name (``quick``: a smaller synthetic log; the real data
    sets are small already). ``data_dir`` is the shared data directory."""
    if name == "hdfs":
        return load_hdfs(data_dir)
    if name == "bgl":
        return load_bgl(data_dir)
    if name == "synthetic":
        return load_synthetic(SyntheticConfig(sessions=600) if quick else None)
    raise InputError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
