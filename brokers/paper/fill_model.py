"""How the simulated venue prices, sizes and charges a fill.

- Market orders pay the spread plus ``slippage_bps`` (buys at the ask and up, sells at the
  bid and down), rounded against the trader to ``price_increment``.
- Limit orders fill when the quote reaches the limit, at the limit or better, never worse.
- One quote fills at most ``max_volume_share`` of the volume traded since the previous
  quote; an order larger than that fills partially across quotes. Unknown or zero volume
  (index data) does not limit.
- IBKR-like fixed commission: per share, at least ``commission_min`` and at most
  ``commission_max_pct`` of the order's traded value, charged per order as it fills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from core.config import PaperConfig
from core.domain.model import ZERO, OrderType, Quote, Side

CENT = Decimal("0.01")
_BPS = Decimal(10000)


@dataclass(frozen=True, slots=True)
class FillModel:
    slippage_bps: Decimal
    commission_per_share: Decimal
    commission_min: Decimal
    commission_max_pct: Decimal
    max_volume_share: Decimal
    price_increment: Decimal
    # The slippage factors a buy and a sell pay (1 +/- slippage_bps / 10000): the same Decimals on
    # every fill, so made once here rather than on each.
    _up: Decimal = field(init=False, repr=False, compare=False)
    _down: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_up", 1 + self.slippage_bps / _BPS)
        object.__setattr__(self, "_down", 1 - self.slippage_bps / _BPS)

    @classmethod
    def from_config(cls, cfg: PaperConfig) -> FillModel:
        return cls(
            slippage_bps=cfg.slippage_bps,
            commission_per_share=cfg.commission_per_share,
            commission_min=cfg.commission_min,
            commission_max_pct=cfg.commission_max_pct,
            max_volume_share=cfg.max_volume_share,
            price_increment=cfg.price_increment,
        )

    def price(self, side: Side, order_type: OrderType, limit: Decimal | None, quote: Quote) -> Decimal | None:
        """The fill price against ``quote``, or None if the order cannot fill on it."""
        if side is Side.BUY:
            touch = quote.ask
            price = (touch * self._up).quantize(self.price_increment, ROUND_CEILING)
            if order_type is OrderType.LIMIT:
                assert limit is not None
                if touch > limit:
                    return None
                price = min(price, limit)
        else:
            touch = quote.bid
            price = (touch * self._down).quantize(self.price_increment, ROUND_FLOOR)
            if order_type is OrderType.LIMIT:
                assert limit is not None
                if touch < limit:
                    return None
                price = max(price, limit)
        return price if price > 0 else None

    def quantity(self, remaining: Decimal, quote: Quote) -> Decimal:
        """How much of ``remaining`` this quote can fill (whole shares)."""
        if not quote.volume:
            return remaining
        cap = (quote.volume * self.max_volume_share).to_integral_value(ROUND_FLOOR)
        return min(remaining, cap)

    def commission_total(self, filled_qty: Decimal, traded_value: Decimal) -> Decimal:
        """The commission an order owes once ``filled_qty`` shares worth ``traded_value`` traded."""
        if filled_qty <= 0:
            return ZERO
        fee = max(filled_qty * self.commission_per_share, self.commission_min)
        fee = min(fee, traded_value * self.commission_max_pct)
        return fee.quantize(CENT, ROUND_HALF_UP)
