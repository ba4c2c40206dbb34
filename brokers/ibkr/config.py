"""The ``[ibkr]`` config section lives in ``core.config.ibkr`` (core may not import brokers/);
re-exported here so the adapter reads it from its own package."""

from core.config.ibkr import IbkrConfig, RestartWindow

__all__ = ["IbkrConfig", "RestartWindow"]
