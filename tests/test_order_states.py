from __future__ import annotations

import pytest

from core.domain.model import OrderStatus as S
from core.domain.order_states import LEGAL, IllegalTransition, check_transition


@pytest.mark.parametrize(
    "path",
    [
        [S.NEW, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED],
        [S.NEW, S.SUBMITTED, S.ACCEPTED, S.PENDING_CANCEL, S.CANCELLED],
        [S.NEW, S.SUBMITTED, S.REJECTED],
        [S.NEW, S.SUBMITTED, S.UNKNOWN, S.ACCEPTED, S.FILLED],
        [S.NEW, S.SUBMITTED, S.ACCEPTED, S.PENDING_CANCEL, S.FILLED],  # filled before the cancel landed
        [S.NEW, S.REJECTED],
        [S.NEW, S.SUBMITTED, S.ACCEPTED, S.PENDING_CANCEL, S.REJECTED],  # refused (Inactive) while cancelling
    ],
)
def test_legal_paths(path: list[S]) -> None:
    for current, target in zip(path, path[1:], strict=False):
        check_transition("o1", current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.FILLED, S.ACCEPTED),
        (S.CANCELLED, S.FILLED),
        (S.REJECTED, S.SUBMITTED),
        (S.NEW, S.FILLED),
        (S.ACCEPTED, S.SUBMITTED),
        (S.PARTIALLY_FILLED, S.ACCEPTED),
    ],
)
def test_illegal_transitions_are_refused(current: S, target: S) -> None:
    with pytest.raises(IllegalTransition, match=f"{current} -> {target}"):
        check_transition("o1", current, target)


def test_terminal_states_have_no_exit_and_every_state_is_covered() -> None:
    assert set(LEGAL) == set(S)
    for state in (S.FILLED, S.CANCELLED, S.REJECTED):
        assert state.is_terminal and not LEGAL[state]
