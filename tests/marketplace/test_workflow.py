from __future__ import annotations

import pytest

from marketplace.workflow import (
    TRANSITIONS,
    Actor,
    ListingState,
    TransitionError,
    actions_available,
    transition_for,
)

S = ListingState

# (state, action, actor, target or None when refused)
TABLE = [
    (S.DRAFT, "submit", Actor.CREATOR, S.SUBMITTED),
    (S.DRAFT, "submit", Actor.ADMIN, None),
    (S.DRAFT, "approve", Actor.ADMIN, None),
    (S.SUBMITTED, "request_changes", Actor.ADMIN, S.CHANGES_REQUESTED),
    (S.SUBMITTED, "approve", Actor.CREATOR, None),
    (S.CHANGES_REQUESTED, "resubmit", Actor.CREATOR, S.RESUBMITTED),
    (S.RESUBMITTED, "request_changes", Actor.ADMIN, S.CHANGES_REQUESTED),
    (S.RESUBMITTED, "approve", Actor.ADMIN, S.APPROVED),
    (S.SUBMITTED, "reject", Actor.ADMIN, S.REJECTED),
    (S.REJECTED, "publish", Actor.ADMIN, None),
    (S.APPROVED, "publish", Actor.CREATOR, S.PUBLISHED),
    (S.PUBLISHED, "suspend", Actor.ADMIN, S.SUSPENDED),
    (S.PUBLISHED, "suspend", Actor.CREATOR, None),
    (S.SUSPENDED, "publish", Actor.ADMIN, S.PUBLISHED),
    (S.SUSPENDED, "retire", Actor.CREATOR, S.RETIRED),
    (S.RETIRED, "publish", Actor.ADMIN, None),
    (S.DRAFT, "publish", Actor.CREATOR, None),
]


@pytest.mark.parametrize(("state", "action", "actor", "target"), TABLE)
def test_transitions(state, action, actor, target):
    if target is None:
        with pytest.raises(TransitionError):
            transition_for(action=action, state=state, actor=actor)
    else:
        assert transition_for(action=action, state=state, actor=actor).target == target


def test_reasons_are_required_for_admin_refusals():
    required = {a for a, t in TRANSITIONS.items() if t.reason_required}
    assert required == {"request_changes", "reject", "suspend"}


def test_creator_sees_only_creator_actions():
    actions = [t.action for t in actions_available(state=S.PUBLISHED, actor=Actor.CREATOR)]
    assert actions == ["retire"]
