"""Chronological train / validation / test splits of windows, the same for every detector.

Why chronological: a detector is trained on the past and scores the future; a random split
lets it see tomorrow's behaviour during training and flatters every model. The rule, for
every data set:

1. order windows by start time (ties: first event's line number, then key);
2. the first ``train_fraction`` of them are the *training period*, the rest the *test
   period* (every test window is scored, whatever its label);
3. the last ``validation_fraction`` of the training period is held out as *validation*:
   its normal windows set thresholds (:func:`logpipe.detect.metrics.threshold_from_normal`),
   never used for fitting;
4. the rest of the training period's **normal** windows are the training set; its anomalous
   windows are left out (semi-supervised detection: fit on normal behaviour only) and
   counted.

With ``purge=True`` (sliding time windows), a window of an earlier part that overlaps the
first window of the next part is dropped and counted, so no event is in both a training
(or validation) window and a test window. Session windows (HDFS blocks) interleave by
nature and are split by first event time without purging, as the usual HDFS protocol does.
Windows with an unknown label (None) count as normal in training and validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from logpipe.detect.windows import Window
from logpipe.errors import UsageError

__all__ = ["Split", "chronological_split"]


@dataclass(frozen=True)
class Split:
    """The three sets every detector of one benchmark run sees, and what was left out."""

    train: tuple[Window, ...]
    validation: tuple[Window, ...]
    test: tuple[Window, ...]
    train_anomalous: int = 0
    validation_anomalous: int = 0
    purged: int = 0

    def describe(self) -> str:
        """One line for reports: sizes and what was left out."""
        test_anomalous = sum(1 for w in self.test if w.label == 1)
        return (
            f"train {len(self.train)} normal (+{self.train_anomalous} anomalous left out), "
            f"validation {len(self.validation)} normal "
            f"(+{self.validation_anomalous} anomalous left out), "
            f"test {len(self.test)} ({test_anomalous} anomalous), purged {self.purged}"
        )


def _order(window: Window) -> tuple[int, int, str]:
    first_line = window.events[0].line_no if window.events else 0
    return (window.start_ns, first_line, window.key)


def _purge(before: list[Window], after: list[Window]) -> tuple[list[Window], int]:
    """``before`` without the windows overlapping the first window of ``after``."""
    if not after:
        return before, 0
    cut = after[0].start_ns
    kept = [w for w in before if w.end_ns <= cut]
    return kept, len(before) - len(kept)


def chronological_split(
    windows: Sequence[Window],
    *,
    train_fraction: float = 0.5,
    validation_fraction: float = 0.2,
    purge: bool = False,
) -> Split:
    """Split ``windows`` by time as the module docstring says; deterministic."""
    if not 0.0 < train_fraction < 1.0:
        raise UsageError("train_fraction must be between 0 and 1")
    if not 0.0 <= validation_fraction < 1.0:
        raise UsageError("validation_fraction must be in [0, 1)")
    ordered = sorted(windows, key=_order)
    n_period = round(len(ordered) * train_fraction)
    period, test = ordered[:n_period], ordered[n_period:]
    purged = 0
    if purge:
        period, purged = _purge(period, test)
    n_val = round(len(period) * validation_fraction)
    fit_part, val_part = period[: len(period) - n_val], period[len(period) - n_val :]
    if purge:
        fit_part, more = _purge(fit_part, val_part)
        purged += more
    train = tuple(w for w in fit_part if w.label != 1)
    validation = tuple(w for w in val_part if w.label != 1)
    return Split(
        train=train,
        validation=validation,
        test=tuple(test),
        train_anomalous=len(fit_part) - len(train),
        validation_anomalous=len(val_part) - len(validation),
        purged=purged,
    )
