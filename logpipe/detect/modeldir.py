"""What a trained model directory holds besides the detector's own files, and reading it.

A model is only useful if new logs are cut into windows exactly as the training logs were,
with the same template ids. So ``logpipe detect train`` keeps, beside the detector's
``config.json`` and weights:

* ``pipeline.json``: the log format (or Loghub preset), the time zone and the windowing
  recipe (:class:`~logpipe.detect.grouping.Windowing`), plus what training saw;
* ``miner.json``: the template miner's state, so scoring continues mining from it (known
  templates keep their ids; new ones get new ids and count as unseen).

Everything is JSON: a model directory can come from someone else, so nothing in it is
executed or unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logpipe.detect.events import EventParser
from logpipe.detect.grouping import Windowing
from logpipe.errors import ModelError

__all__ = ["MINER_FILE", "PIPELINE_FILE", "ModelPipeline", "read_pipeline", "write_pipeline"]

PIPELINE_FILE = "pipeline.json"
MINER_FILE = "miner.json"
_VERSION = 1


@dataclass(frozen=True)
class ModelPipeline:
    """How raw lines become the windows a model scores (saved as ``pipeline.json``)."""

    windowing: Windowing
    log_format: str | None = None
    preset: str | None = None
    tz: str = "UTC"
    trained_on: dict[str, Any] = field(default_factory=dict)

    def parser(self, model_dir: Path) -> EventParser:
        """A parser continuing from the model's miner state (``miner.json``)."""
        miner = model_dir / MINER_FILE
        if not miner.is_file():
            raise ModelError(f"no {MINER_FILE}: not a model trained by logpipe detect train",
                             path=str(model_dir))  # fmt: skip
        return EventParser.from_state(miner, self.log_format, preset=self.preset, tz=self.tz)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "log_format": self.log_format,
            "preset": self.preset,
            "tz": self.tz,
            "windowing": self.windowing.to_dict(),
            "trained_on": self.trained_on,
        }


def write_pipeline(model_dir: Path, pipeline: ModelPipeline, parser: EventParser) -> None:
    """Write ``pipeline.json`` and ``miner.json`` atomically (temp file, then rename)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / (PIPELINE_FILE + ".tmp")
    tmp.write_text(json.dumps(pipeline.to_json(), indent=1, sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, model_dir / PIPELINE_FILE)
    parser.save_state(model_dir / MINER_FILE)


def read_pipeline(model_dir: Path) -> ModelPipeline:
    """``pipeline.json`` of ``model_dir``; a :class:`ModelError` naming what is wrong."""
    path = model_dir / PIPELINE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"no {PIPELINE_FILE}: not a model trained by logpipe detect train", path=str(model_dir)
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {PIPELINE_FILE}: {exc}", path=str(model_dir)) from exc
    version = data.get("version") if isinstance(data, dict) else None
    if version != _VERSION:
        raise ModelError(
            f"{PIPELINE_FILE}: unsupported version {version!r} (this logpipe reads "
            f"{_VERSION}); retrain the model",
            path=str(model_dir),
        )
    try:
        return ModelPipeline(
            windowing=Windowing.from_dict(data["windowing"]),
            log_format=data.get("log_format"),
            preset=data.get("preset"),
            tz=str(data.get("tz", "UTC")),
            trained_on=dict(data.get("trained_on") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{PIPELINE_FILE}: {exc}", path=str(model_dir)) from exc
