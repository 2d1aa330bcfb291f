"""Natural-language questions to LogQL: data, prompt, validation loop and evaluation.

The model itself lives in :mod:`logpipe.models.nl2logql`; everything here is plain Python
over our LogQL parser and store, so it is testable without loading a model.
"""
