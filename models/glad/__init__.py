"""GLAD: a graph neural network over per-window event/entity graphs with a temporal encoder."""
