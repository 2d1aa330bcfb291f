"""Learned models of logpipe (installed as ``logpipe.models``)."""
