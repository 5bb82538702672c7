"""`purge_keys`: delete delivered keys once they are older than `KEY_RETENTION_S`.

The ledger keeps that the order was delivered and when, and records when its keys were
purged. Keys of an order that has not reached `DELIVERED` are kept, because the shop may
still need them.
"""

from __future__ import annotations

import logging

from fulfillment.states import OrderState
from tasks.app import app
from tasks.runtime import runtime

logger = logging.getLogger(__name__)

# Orders purged per run, so one run stays short even after a long pause.
PURGE_BATCH = 1000


@app.task(name="tasks.purge_keys")
def purge_keys() -> dict[str, int]:
    """Delete the keys of delivered orders stored longer ago than the retention period."""
    rt = runtime()
    now = rt.clock()
    purged = 0
    for reference_id in rt.vault.stored_before(
        now - rt.settings.key_retention_s, limit=PURGE_BATCH
    ):
        record = rt.ledger.get(reference_id)
        if record is not None and record.state is not OrderState.DELIVERED:
            continue
        rt.vault.delete(reference_id)
        if record is not None:
            rt.ledger.record_event(
                reference_id, now=now, event="keys_purged", fields={"keys_purged_at": now}
            )
        purged += 1
    if purged:
        logger.info("purge_keys: deleted the keys of %d delivered orders", purged)
    return {"purged": purged}
