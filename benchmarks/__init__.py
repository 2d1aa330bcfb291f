"""Reproducible benchmarks: each prints our figure beside the baseline measured in the same run."""
