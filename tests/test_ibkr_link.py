"""The IBKR adapter's connection state: one enum plus IB's own link, everything else derived."""

from __future__ import annotations

import pytest

from brokers.ibkr.link import Link, LinkState

# state -> (socket_up, in_session, accepting) with IB's link up
EXPECTED = {
    LinkState.DISCONNECTED: (False, False, False),
    LinkState.SYNCING: (True, False, False),
    LinkState.READY: (True, True, True),
    LinkState.RESYNCING: (True, True, False),
    LinkState.CLOSED: (False, False, False),
}


@pytest.mark.parametrize("state", list(LinkState))
@pytest.mark.parametrize("ib_link_up", [True, False])
def test_every_flag_is_derived_from_the_state_and_ibs_link(state: LinkState, ib_link_up: bool) -> None:
    link = Link()
    link.state, link.ib_link_up = state, ib_link_up
    socket_up, in_session, accepting = EXPECTED[state]
    assert (link.socket_up, link.in_session) == (socket_up, in_session)
    assert link.connected == (in_session and ib_link_up)
    assert link.accepting == (accepting and ib_link_up)


def test_a_lost_socket_never_reopens_a_closed_link() -> None:
    link = Link()
    link.state = LinkState.READY
    link.lost()
    assert link.state is LinkState.DISCONNECTED
    link.state = LinkState.CLOSED
    link.lost()
    assert link.state is LinkState.CLOSED


def test_each_transition_is_announced_once() -> None:
    calls: list[tuple[bool, str]] = []
    link = Link(lambda up, reason: calls.append((up, reason)))
    link.announce(False, "refused")
    link.announce(False, "refused again")
    link.announce(True, "connected")
    link.announce(True, "still connected")
    assert calls == [(False, "refused"), (True, "connected")]
