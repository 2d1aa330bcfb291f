"""Sources and sinks (installed as ``logpipe.connectors``)."""
