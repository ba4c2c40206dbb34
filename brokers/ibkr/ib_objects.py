"""ib_async's Order and Stock as the adapter builds them, with a repr that costs little.

ib_async formats a Trade into an f-string for its INFO log on every ``placeOrder`` and every
``orderStatus`` (about four times per order), whatever the log level, so the string is made
even when ``[logging] ib_async_level`` drops it. Order's own repr compares each of its ~150
fields with its default (about 120 us a time here) and Contract's does the same: most of
the ~190 us a Trade's repr costs on the loop. These subclasses change nothing but the repr:
it names the fields the adapter sets or IB fills in, so the log line, when kept, still says
which order it is. The encoder and the decoder read the dataclass fields, as before.
"""

from __future__ import annotations

from ib_async import Order, Stock

_UNSET_DOUBLE = 1.7976931348623157e308


def _shown(obj: object, names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        value = getattr(obj, name)
        if value is None or value == "" or value == _UNSET_DOUBLE:
            continue
        parts.append(f"{name}={value!r}")
    return f"{type(obj).__qualname__}({', '.join(parts)})"


class SentOrder(Order):
    """An order the adapter places (its fields are Order's; only the repr differs)."""

    _SHOWN = ("orderId", "clientId", "permId", "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice",
              "tif", "orderRef", "account", "parentId", "transmit")

    def __repr__(self) -> str:
        return _shown(self, self._SHOWN)

    __str__ = __repr__


class SmartStock(Stock):
    """A US stock the adapter trades or subscribes to (qualified in place: IB's fields kept)."""

    _SHOWN = ("conId", "symbol", "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass")

    def __repr__(self) -> str:
        return _shown(self, self._SHOWN)

    __str__ = __repr__
