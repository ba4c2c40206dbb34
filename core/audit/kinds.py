"""The kinds of audit row: one name per engine decision or operator action.

Components that own a kind of their own (reconciliation, the direct flatten) define it next
to their code; these are the kinds shared by the engine, the OMS and the control path.
"""

from __future__ import annotations

SIGNAL = "signal"
GATE_PASS = "gate.pass"
GATE_REFUSE = "gate.refuse"
ORDER_SENT = "order.sent"
ORDER_ACK = "order.ack"
ORDER_FILL = "order.fill"
ORDER_CANCELLED = "order.cancelled"
ORDER_REJECTED = "order.rejected"
LIMIT_CHANGE = "config.limit"
CONFIG_CHANGE = "config.change"
STATE_CHANGE = "trading.state"
DEADMAN_ARMED = "deadman.armed"
DEADMAN_CONFIRMED = "deadman.confirmed"
DEADMAN_WARNING = "deadman.warning"
DEADMAN_MISSED = "deadman.missed"
DEADMAN_DISARMED = "deadman.disarmed"
ENGINE_START = "engine.start"
ENGINE_STOP = "engine.stop"
OPERATOR = "operator."  # prefix: operator commands are "operator.<action>"

KINDS: tuple[str, ...] = (
    SIGNAL, GATE_PASS, GATE_REFUSE, ORDER_SENT, ORDER_ACK, ORDER_FILL, ORDER_CANCELLED,
    ORDER_REJECTED, LIMIT_CHANGE, CONFIG_CHANGE, STATE_CHANGE, DEADMAN_ARMED, DEADMAN_CONFIRMED,
    DEADMAN_WARNING, DEADMAN_MISSED, DEADMAN_DISARMED, ENGINE_START, ENGINE_STOP,
)
