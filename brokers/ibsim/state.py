"""The simulator's account as it persists: cash, positions, orders, executions, counters.

Everything a real gateway remembers across API connections lives here, so that a client
can reconnect (or the simulator restart with ``--state``) and find the same orders,
permIds and fills. The file is JSON, written atomically (temp file + ``os.replace``)
after every change, so that a kill at any moment leaves either the old or the new state.
Money and quantities are ``Decimal``, stored as strings.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA",
    "SimExecution",
    "SimOrder",
    "SimPosition",
    "SimState",
    "StateError",
    "load_state",
    "save_state",
]

SCHEMA = 1
ZERO = Decimal(0)
WORKING = frozenset({"PreSubmitted", "Submitted"})


class StateError(Exception):
    """The state file cannot be read or written; the message is fit for one line."""


@dataclass(slots=True)
class SimOrder:
    """One order as the gateway keeps it, keyed by permId (order ids can repeat after a rollback)."""

    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    con_id: int
    exchange: str
    action: str  # BUY or SELL
    total_qty: Decimal
    order_type: str  # MKT or LMT
    lmt_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    outside_rth: bool = False
    status: str = "PreSubmitted"
    filled: Decimal = ZERO
    avg_fill_price: Decimal = ZERO
    last_fill_price: Decimal = ZERO
    placed_at: float = 0.0
    completed_at: float | None = None
    completed_status: str = ""
    fill_cap: Decimal | None = None  # at most this much on the next match (partial fills)

    @property
    def remaining(self) -> Decimal:
        return self.total_qty - self.filled

    @property
    def working(self) -> bool:
        """May still fill."""
        return self.status in WORKING

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclass(slots=True)
class SimExecution:
    """One fill, with its commission (and realized P&L when it closed a position)."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    con_id: int
    side: str  # BOT or SLD
    shares: Decimal
    price: Decimal
    time: float  # epoch seconds
    cum_qty: Decimal
    avg_price: Decimal
    order_ref: str
    account: str
    exchange: str
    commission: Decimal
    realized_pnl: Decimal | None  # None when the fill only opened or added


@dataclass(slots=True)
class SimPosition:
    """Signed quantity and IB-style average cost (commission included) of one symbol."""

    symbol: str
    con_id: int
    qty: Decimal = ZERO
    avg_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO


@dataclass(slots=True)
class SimState:
    """The whole persisted account."""

    account: str = "DU1234567"
    cash: Decimal = Decimal("1000000")
    realized_pnl: Decimal = ZERO
    next_valid_id: int = 1
    next_perm_id: int = 1_100_000_001
    next_exec_seq: int = 1
    con_ids: dict[str, int] = field(default_factory=dict)
    positions: dict[str, SimPosition] = field(default_factory=dict)
    orders: dict[int, SimOrder] = field(default_factory=dict)  # by permId
    executions: list[SimExecution] = field(default_factory=list)
    prices: dict[str, dict[str, str]] = field(default_factory=dict)  # the price paths' cursors

    def find_order(self, client_id: int, order_id: int) -> SimOrder | None:
        """The newest order with this (clientId, orderId), the key a client knows its order by."""
        found = None
        for o in self.orders.values():
            if o.client_id == client_id and o.order_id == order_id:
                if found is None or o.perm_id > found.perm_id:
                    found = o
        return found


# --------------------------------------------------------------------------- JSON


def _enc(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): _enc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_enc(v) for v in value]
    return value


def _dec_fields(cls: type, raw: dict[str, Any]) -> Any:
    """Build a dataclass from its JSON dict, turning the Decimal-typed fields back into Decimals."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        v = raw[f.name]
        if "Decimal" in str(f.type) and v is not None:
            v = Decimal(str(v))
        kwargs[f.name] = v
    return cls(**kwargs)


def state_to_json(state: SimState) -> dict[str, Any]:
    d = asdict(state)
    d["orders"] = [asdict(o) for o in state.orders.values()]
    return {"schema": SCHEMA, **_enc(d)}


def state_from_json(raw: dict[str, Any]) -> SimState:
    if raw.get("schema") != SCHEMA:
        raise StateError(f"state schema {raw.get('schema')!r} is not {SCHEMA}")
    st = SimState(
        account=str(raw["account"]),
        cash=Decimal(raw["cash"]),
        realized_pnl=Decimal(raw["realized_pnl"]),
        next_valid_id=int(raw["next_valid_id"]),
        next_perm_id=int(raw["next_perm_id"]),
        next_exec_seq=int(raw["next_exec_seq"]),
        con_ids={str(k): int(v) for k, v in raw["con_ids"].items()},
        prices={str(k): dict(v) for k, v in raw.get("prices", {}).items()},
    )
    for sym, p in raw["positions"].items():
        st.positions[sym] = _dec_fields(SimPosition, p)
    for o in raw["orders"]:
        order = _dec_fields(SimOrder, o)
        st.orders[order.perm_id] = order
    st.executions = [_dec_fields(SimExecution, e) for e in raw["executions"]]
    return st


def load_state(path: Path) -> SimState | None:
    """The state in ``path``, or ``None`` when the file does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateError(f"cannot read state file {path}: {e.strerror or e}") from e
    try:
        return state_from_json(json.loads(text))
    except StateError as e:
        raise StateError(f"state file {path}: {e}") from e
    except (ValueError, KeyError, TypeError, InvalidOperation) as e:
        raise StateError(f"state file {path} is not a simulator state ({type(e).__name__}: {e})") from e


def save_state(path: Path, state: SimState) -> None:
    """Write ``state`` to ``path`` atomically: a reader sees the old or the new file, never half."""
    data = json.dumps(state_to_json(state), indent=1, sort_keys=True)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise StateError(f"cannot write state file {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StateError(f"cannot write state file {path}: {e.strerror or e}") from e
