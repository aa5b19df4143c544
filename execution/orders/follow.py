"""The start of the fast follow-up of live orders (README "Execution engine", Fills): after a
send's outcomes are committed, each live account with open orders gets one chain of short
tasks (`execution.orders.fills.orders_follow_step`) reading its trade and order books until they
are final. Kept apart from `fills` so that recording outcomes (`lifecycle`) can start it
without importing the fill bookkeeping that imports `lifecycle`."""

from __future__ import annotations

import time
from typing import Any

from execution import conf, enqueue

# One follower per account: the chain holds `follow:<id>` (refreshed every round). A start
# that finds it taken leaves a note in `follow-more:<id>`, which the chain reads as it stops,
# so an order acknowledged while the chain decides to stop is still followed. Both steps are
# scripts: Redis runs each whole, so a start lands either before the stop (the note is read)
# or after it (the key is free and a new chain starts).
_FOLLOW_START = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
return 0
"""
FOLLOW_KEY_SLACK_SECONDS = 30  # a chain whose worker died frees its account after this


def follow_keys(account_id: int) -> list[str]:
    return [f"follow:{account_id}", f"follow-more:{account_id}"]


def orders_follow_start(*, account_ids: Any) -> list[int]:
    """Start the fast follow-up of these accounts' open live orders (after the send's
    outcomes are committed). Paper accounts and accounts already followed start nothing
    (the running chain is told to look again). Returns the accounts whose chain started."""
    from brokers.models import BrokerAccount
    from execution.send.sender import engine_redis

    if conf.follow_max_seconds() <= 0:
        return []
    live = list(
        BrokerAccount.objects.filter(pk__in=list(account_ids))
        .exclude(broker="paper")
        .values_list("pk", flat=True)
    )
    if not live:
        return []
    start = engine_redis().register_script(_FOLLOW_START)
    until = time.time() + conf.follow_max_seconds()
    started = []
    for account_id in sorted(live):
        ttl = int(conf.follow_max_seconds()) + FOLLOW_KEY_SLACK_SECONDS
        if start(keys=follow_keys(account_id), args=[f"{until:.3f}", ttl]):
            started.append(account_id)
    # The default queue: these are reads, and the execution queue's workers must be free for
    # the sends at the next boundary.
    for account_id in started:
        enqueue.task_enqueue_on_commit(
            enqueue.ACCOUNT_ORDERS_FOLLOW, args=[account_id, until], queue="default"
        )
    return started
