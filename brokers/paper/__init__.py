from brokers.paper.broker import PaperBroker
from brokers.paper.fill_model import FillModel

__all__ = ["FillModel", "PaperBroker"]
