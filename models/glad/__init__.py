"""GLAD: a graph neural network over per-window event/entity graphs with a temporal encoder.

``GladDetector`` implements the detector contract of :mod:`logpipe.detect.windows` (``fit``,
``score``, ``explain``, ``threshold``); ``GladConfig`` holds every setting. The model card is
``models/glad/README.md``.
"""

from .config import GladConfig
from .detector import GladDetector, GladStats

__all__ = ["GladConfig", "GladDetector", "GladStats"]
