"""Load a trained detector from its model directory: ``load_detector(path)``.

A model directory names its detector in ``config.json``::

    {"detector": "glad", ...whatever else the model keeps...}

and :func:`load_detector` hands the directory to that detector's loader. The names come
from a fixed registry (:data:`DETECTORS`), never from the file: a model directory picks
*which* known loader runs, it cannot make us import arbitrary code. Loaders are imported
only when used, so the daemon pays for torch only when a GLAD model is configured.

What a loader must return: an :class:`~logpipe.detect.windows.ExplainingDetector` (a
``name``, a fitted ``threshold``, ``explain(windows, top_k)`` returning one
:class:`~logpipe.detect.windows.WindowScore` per window in the order given).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from logpipe.detect.windows import ExplainingDetector
from logpipe.errors import LogpipeError, ModelError

__all__ = ["CONFIG_FILE", "DETECTORS", "Loader", "load_detector", "read_model_config"]

CONFIG_FILE = "config.json"

#: Builds a detector from its model directory.
Loader = Callable[[Path], ExplainingDetector]


def _import_loader(module: str, attr: str, extra: str) -> Loader:
    """A loader calling ``module.attr.load(path)``, importing it on first use."""

    def load(path: Path) -> ExplainingDetector:
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ModelError(
                f"this install has no {module}.{attr} ({exc}); install logpipe with the "
                f"{extra!r} extra (pip install 'logpipe[{extra}]') from a version that has it",
                path=str(path),
            ) from exc
        detector: ExplainingDetector = cls.load(path)
        return detector

    return load


#: The detectors a model directory may name (``config.json`` → ``"detector"``).
DETECTORS: Mapping[str, Loader] = MappingProxyType(
    {"glad": _import_loader("logpipe.models.glad", "GladDetector", "ml")}
)


def read_model_config(path: str | Path) -> dict[str, object]:
    """``path/config.json`` as a JSON object; ModelError saying what is wrong otherwise."""
    root = Path(path)
    if not root.is_dir():
        raise ModelError(
            "not a directory; detect.model_dir must name a trained model's "
            "directory (the --out of `logpipe detect train`)",
            path=str(root),
        )
    config_path = root / CONFIG_FILE
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no {CONFIG_FILE}: not a model directory", path=str(root)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {CONFIG_FILE}: {exc}", path=str(root)) from exc
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{CONFIG_FILE} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}",
            path=str(root),
        ) from exc
    if not isinstance(data, dict):
        raise ModelError(f"{CONFIG_FILE} must hold a JSON object", path=str(root))
    return data


def load_detector(
    path: str | Path, *, detectors: Mapping[str, Loader] = DETECTORS
) -> ExplainingDetector:
    """The detector saved in model directory ``path`` (see the module docstring).

    ``detectors`` replaces the registry (tests, embedders with detectors of their own).
    Raises :class:`ModelError` naming the directory for every problem: missing or bad
    ``config.json``, an unknown detector name, a loader that fails, or an object that is
    not an explaining detector.
    """
    root = Path(path)
    config = read_model_config(root)
    name = config.get("detector")
    if not isinstance(name, str) or not name:
        raise ModelError(
            f'{CONFIG_FILE} has no "detector" name (one of {sorted(detectors)})', path=str(root)
        )
    loader = detectors.get(name)
    if loader is None:
        raise ModelError(
            f"unknown detector {name!r} in {CONFIG_FILE}; this install knows {sorted(detectors)}",
            path=str(root),
        )
    try:
        detector = loader(root)
    except LogpipeError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"cannot load the {name} model: {exc!r}", path=str(root)) from exc
    missing = [a for a in ("name", "threshold", "explain") if not hasattr(detector, a)]
    if missing:
        raise ModelError(
            f"the {name} loader returned {type(detector).__name__}, which lacks "
            f"{missing} of an ExplainingDetector",
            path=str(root),
        )
    return detector
