"""Online log template mining (Drain family) and its post-processing."""

from logpipe.parsing.miner import ClusterInfo, MinerConfig, TemplateMiner

__all__ = ["ClusterInfo", "MinerConfig", "TemplateMiner"]
