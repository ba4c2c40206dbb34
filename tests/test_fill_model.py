from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

from brokers.paper.fill_model import FillModel
from core.domain.model import OrderType, Quote, Side

T0 = datetime(2020, 1, 2, 15, tzinfo=timezone.utc)
MODEL = FillModel(
    slippage_bps=D(10), commission_per_share=D("0.005"), commission_min=D("1.00"),
    commission_max_pct=D("0.01"), max_volume_share=D("0.1"), price_increment=D("0.0001"),
)


def q(bid: str, ask: str, volume: str | None = "10000") -> Quote:
    return Quote("AAPL", T0, D(bid), D(ask), (D(bid) + D(ask)) / 2, D(volume) if volume else None)


def test_market_orders_pay_spread_and_slippage_rounded_against_the_trader() -> None:
    assert MODEL.price(Side.BUY, OrderType.MARKET, None, q("99.99", "100.01")) == D("100.1101")
    assert MODEL.price(Side.SELL, OrderType.MARKET, None, q("99.99", "100.01")) == D("99.8900")


def test_limit_buy_fills_only_at_or_below_limit_never_worse() -> None:
    assert MODEL.price(Side.BUY, OrderType.LIMIT, D("100.00"), q("100.01", "100.02")) is None
    # ask at the limit: slippage may not push the price through the limit
    assert MODEL.price(Side.BUY, OrderType.LIMIT, D("100.02"), q("100.01", "100.02")) == D("100.02")
    # market gapped below the limit: the better price
    assert MODEL.price(Side.BUY, OrderType.LIMIT, D("105"), q("99.00", "99.01")) == D("99.1091")


def test_limit_sell_fills_only_at_or_above_limit() -> None:
    assert MODEL.price(Side.SELL, OrderType.LIMIT, D("101"), q("100.99", "101.01")) is None
    assert MODEL.price(Side.SELL, OrderType.LIMIT, D("100.99"), q("100.99", "101.01")) == D("100.99")


def test_partial_fill_caps_at_volume_share_and_unknown_volume_does_not() -> None:
    assert MODEL.quantity(D(5000), q("1", "1.01", "10000")) == D(1000)
    assert MODEL.quantity(D(500), q("1", "1.01", "10000")) == D(500)
    assert MODEL.quantity(D(5000), q("1", "1.01", None)) == D(5000)
    assert MODEL.quantity(D(5000), q("1", "1.01", "0")) == D(5000)
    assert MODEL.quantity(D(10), q("1", "1.01", "5")) == D(0)  # 10% of 5 shares rounds down to nothing


def test_commission_per_share_with_minimum_and_maximum() -> None:
    assert MODEL.commission_total(D(1000), D(50000)) == D("5.00")  # 0.005 x 1000
    assert MODEL.commission_total(D(100), D(5000)) == D("1.00")  # minimum
    assert MODEL.commission_total(D(1000), D(50)) == D("0.50")  # max 1% of a $50 trade
    assert MODEL.commission_total(D(0), D(0)) == D(0)
    # charged per order as it fills: the increments sum to the whole-order fee
    first = MODEL.commission_total(D(100), D(10000))
    total = MODEL.commission_total(D(1000), D(100000))
    assert first == D("1.00") and total - first == D("4.00")
