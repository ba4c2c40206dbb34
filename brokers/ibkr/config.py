"""The ``[ibkr]`` config section lives in ``core.ibkr_config`` (core may not import brokers/);
re-exported here so the adapter reads it from its own package."""

from core.ibkr_config import IbkrConfig, RestartWindow

__all__ = ["IbkrConfig", "RestartWindow"]
