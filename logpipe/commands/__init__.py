"""One module per ``logpipe`` subcommand; each exposes ``register(app)``."""
