from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.config import RiskConfig
from core.model import OrderType, Side
from core.risk import OrderRequest, RiskGate

GATE = RiskGate(RiskConfig(max_order_qty=D(1000), max_order_notional=D(50000), max_position_qty=D(1500)))


def check(side: Side, qty: int, *, position: int = 0, buy: int = 0, sell: int = 0, last: str | None = "40",
          limit: str | None = None) -> str | None:
    req = OrderRequest("s", "AAPL", side, D(qty), OrderType.LIMIT if limit else OrderType.MARKET,
                       D(limit) if limit else None)
    return GATE.check(req, position=D(position), working_buy=D(buy), working_sell=D(sell),
                      last_price=D(last) if last else None)


def test_within_limits_passes() -> None:
    assert check(Side.BUY, 1000) is None
    assert check(Side.SELL, 500, position=1500) is None


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (dict(side=Side.BUY, qty=1001), "exceeds max_order_qty 1000"),
        (dict(side=Side.BUY, qty=0), "quantity must be positive"),
        (dict(side=Side.BUY, qty=900, last="60"), "notional 54000.00 exceeds max_order_notional 50000"),
        (dict(side=Side.BUY, qty=100, limit="600"), "notional 60000.00 exceeds max_order_notional"),
        (dict(side=Side.BUY, qty=10, last=None), "no price for AAPL to value a market order"),
        (dict(side=Side.BUY, qty=600, position=1000), "would reach 1600"),
        (dict(side=Side.BUY, qty=600, buy=1000), "would reach 1600"),  # working orders count
        (dict(side=Side.SELL, qty=600, position=-1000), "would reach -1600"),
    ],
)
def test_refusals_name_the_limit(kwargs: dict, reason: str) -> None:
    side = kwargs.pop("side")
    qty = kwargs.pop("qty")
    result = check(side, qty, **kwargs)
    assert result is not None and reason in result


def test_reducing_an_oversized_position_is_allowed() -> None:
    # Over the limit already (e.g. the limit was lowered): a reducing order must still pass.
    assert check(Side.SELL, 500, position=3000) is None
    assert check(Side.BUY, 500, position=3000) is not None


def test_fractional_shares_refused() -> None:
    req = OrderRequest("s", "AAPL", Side.BUY, D("1.5"), OrderType.MARKET)
    assert "whole shares" in (GATE.check(req, position=D(0), working_buy=D(0), working_sell=D(0),
                                         last_price=D(1)) or "")
