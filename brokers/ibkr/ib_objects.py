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
from ib_async.util import UNSET_DOUBLE


class _ShortRepr:
    """The repr of the fields in ``_SHOWN`` that are set (first in the MRO: it replaces ib_async's)."""

    _SHOWN: tuple[str, ...] = ()

    def __repr__(self) -> str:
        parts = []
        for name in self._SHOWN:
            value = getattr(self, name)
            if value is None or value == "" or value == UNSET_DOUBLE:
                continue
            parts.append(f"{name}={value!r}")
        return f"{type(self).__qualname__}({', '.join(parts)})"

    __str__ = __repr__


class SentOrder(_ShortRepr, Order):
    """An order the adapter places (its fields are Order's; only the repr differs)."""

    _SHOWN = ("orderId", "clientId", "permId", "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice",
              "tif", "orderRef", "account", "parentId", "transmit")


class SmartStock(_ShortRepr, Stock):
    """A US stock the adapter trades or subscribes to (qualified in place: IB's fields kept)."""

    _SHOWN = ("conId", "symbol", "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass")
