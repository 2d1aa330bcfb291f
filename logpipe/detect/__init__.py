"""Anomaly detection over parsed logs: fields, windows, dynamic graphs, baselines (GLAD)."""
