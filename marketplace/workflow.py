"""The listing review workflow as data: which action moves which state, who may take it, and
whether a reason is required. Services apply it; admin actions and creator pages list it.

draft → submitted → changes requested ↔ resubmitted → approved | rejected → published →
suspended ↔ published, and retired from published or suspended.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from django.db import models


class ListingState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted for review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    RESUBMITTED = "resubmitted", "Resubmitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    PUBLISHED = "published", "Published"
    SUSPENDED = "suspended", "Suspended"
    RETIRED = "retired", "Retired"


class Actor(Enum):
    CREATOR = "creator"
    ADMIN = "admin"


@dataclass(frozen=True)
class Transition:
    action: str
    label: str
    sources: frozenset[str]
    target: str
    actors: frozenset[Actor]
    reason_required: bool


S = ListingState
_CREATOR = frozenset({Actor.CREATOR})
_ADMIN = frozenset({Actor.ADMIN})
_BOTH = frozenset({Actor.CREATOR, Actor.ADMIN})
_IN_REVIEW = frozenset({S.SUBMITTED, S.RESUBMITTED})

TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in [
        Transition(
            "submit", "Submit for review", frozenset({S.DRAFT}), S.SUBMITTED, _CREATOR, False
        ),
        Transition(
            "request_changes", "Request changes", _IN_REVIEW, S.CHANGES_REQUESTED, _ADMIN, True
        ),
        Transition(
            "resubmit", "Resubmit", frozenset({S.CHANGES_REQUESTED}), S.RESUBMITTED, _CREATOR, False
        ),
        Transition("approve", "Approve", _IN_REVIEW, S.APPROVED, _ADMIN, False),
        Transition("reject", "Reject", _IN_REVIEW, S.REJECTED, _ADMIN, True),
        # A suspended listing is published again by an admin once the cause is fixed.
        Transition(
            "publish", "Publish", frozenset({S.APPROVED, S.SUSPENDED}), S.PUBLISHED, _BOTH, False
        ),
        Transition("suspend", "Suspend", frozenset({S.PUBLISHED}), S.SUSPENDED, _ADMIN, True),
        Transition(
            "retire", "Retire", frozenset({S.PUBLISHED, S.SUSPENDED}), S.RETIRED, _BOTH, False
        ),
    ]
}

# The creator may edit the listing text, plans and snapshot only while nobody is reviewing it.
EDITABLE_STATES = frozenset({S.DRAFT, S.CHANGES_REQUESTED})
# States in which traders can find a listing and subscribe to it.
SUBSCRIBABLE_STATES = frozenset({S.PUBLISHED})
# States in which existing subscriptions keep running.
RUNNING_STATES = frozenset({S.PUBLISHED})


class TransitionError(Exception):
    """An action that the workflow does not allow from the current state or for this actor."""


def transition_for(*, action: str, state: str, actor: Actor) -> Transition:
    """The transition `action` from `state`, or TransitionError saying why not."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise TransitionError(f"Unknown action “{action}”.")
    if actor not in transition.actors:
        who = "an admin" if Actor.ADMIN in transition.actors else "the creator"
        raise TransitionError(f"Only {who} can {transition.label.lower()} a listing.")
    if state not in transition.sources:
        raise TransitionError(
            f"A listing that is {ListingState(state).label.lower()} cannot be "
            f"{ListingState(transition.target).label.lower()} from here."
        )
    return transition


def actions_available(*, state: str, actor: Actor) -> list[Transition]:
    return [t for t in TRANSITIONS.values() if state in t.sources and actor in t.actors]
