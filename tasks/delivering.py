"""`deliver_keys`: hand a finished order's outcome to the shop, once per sink.

A delivery claims the order by moving it to `DELIVERING` and taking the next
`delivery_seq`; only the task holding the current number may deliver. Each sink that
succeeded is recorded, so a retry skips it. Every attempt of one order carries the same
webhook message id, so the shop recognises a repeat sent after a crash.
"""

from __future__ import annotations

import dataclasses
import logging

from fulfillment.ledger import NOT_DUE
from fulfillment.payload import build_payload, webhook_message_id
from fulfillment.records import OrderRecord
from fulfillment.schedule import backoff_delay
from fulfillment.sinks import DeliveryError, Sink
from fulfillment.states import OUTCOME_STATES, OrderState
from tasks.app import app
from tasks.runtime import Runtime, runtime
from tasks.steps import due_at, summary

logger = logging.getLogger(__name__)

# Seconds of the first retry after a failed delivery; it doubles up to
# DELIVERY_RETRY_BACKOFF_MAX_S.
DELIVERY_RETRY_BASE_S = 5.0


@app.task(name="tasks.deliver_keys")
def deliver_keys(reference_id: str, delivery_seq: int | None = None) -> dict[str, str]:
    """Deliver the order's outcome; the reconciler sets `delivery_seq` when it retries."""
    rt = runtime()
    record = rt.ledger.get(reference_id)
    if record is None:
        logger.error("deliver_keys: order %s not found in the ledger", reference_id)
        return summary(reference_id, "NOT_FOUND")

    claimed = _claim(rt, record) if delivery_seq is None else _resume(record, delivery_seq)
    if claimed is None:
        logger.info(
            "deliver_keys: order %s is %s (delivery %d); nothing to deliver",
            reference_id,
            record.state.value,
            record.delivery_seq,
        )
        return summary(reference_id, record.state.value)

    payload = build_payload(claimed, rt.vault.load(reference_id) or [], now=rt.clock())
    message_id = webhook_message_id(reference_id)
    for sink in rt.sinks:
        if sink.name in claimed.delivered_sinks:
            continue
        try:
            sink.deliver(payload, message_id=message_id)
        except DeliveryError as error:
            return _handle_failure(rt, claimed, sink, error)
        claimed = _mark_sink_done(rt, claimed, sink)

    return _finish(rt, claimed)


def _claim(rt: Runtime, record: OrderRecord) -> OrderRecord | None:
    if record.state not in OUTCOME_STATES:
        return None
    now = rt.clock()
    moved = rt.ledger.transition(
        record.reference_id,
        expected=record.state,
        new=OrderState.DELIVERING,
        now=now,
        event="delivering",
        due_at=due_at(rt, now, rt.settings.webhook_timeout_s),
        fields={"outcome": record.state, "delivery_started_at": now},
        increment=("delivery_seq",),
    )
    return rt.ledger.get(record.reference_id) if moved else None


def _resume(record: OrderRecord, delivery_seq: int) -> OrderRecord | None:
    if record.state is not OrderState.DELIVERING or record.delivery_seq != delivery_seq:
        return None
    return record


def _mark_sink_done(rt: Runtime, record: OrderRecord, sink: Sink) -> OrderRecord:
    done = sorted(record.delivered_sinks | {sink.name})
    rt.ledger.transition(
        record.reference_id,
        expected=OrderState.DELIVERING,
        new=OrderState.DELIVERING,
        now=rt.clock(),
        event="delivered_to",
        delivery_seq=record.delivery_seq,
        fields={"delivered_sinks": ",".join(done)},
        details={"sink": sink.name},
    )
    return dataclasses.replace(record, delivered_sinks=frozenset(done))


def _finish(rt: Runtime, record: OrderRecord) -> dict[str, str]:
    now = rt.clock()
    moved = rt.ledger.transition(
        record.reference_id,
        expected=OrderState.DELIVERING,
        new=OrderState.DELIVERED,
        now=now,
        event="delivered",
        delivery_seq=record.delivery_seq,
        due_at=NOT_DUE,
        fields={"delivered_at": now},
        increment=("delivery_attempts",),
    )
    if moved:
        outcome = record.outcome.value if record.outcome else "?"
        logger.info("deliver_keys: order %s delivered (%s)", record.reference_id, outcome)
    return summary(record.reference_id, OrderState.DELIVERED.value)


def _handle_failure(
    rt: Runtime, record: OrderRecord, sink: Sink, error: DeliveryError
) -> dict[str, str]:
    now = rt.clock()
    attempt = record.delivery_attempts + 1
    started_at = record.delivery_started_at or now
    gave_up = not error.retryable or now - started_at >= rt.settings.delivery_retry_max_s
    details = {
        "sink": sink.name,
        "error": str(error),
        "http_status": error.http_status,
        "attempt": attempt,
    }
    if gave_up:
        rt.ledger.transition(
            record.reference_id,
            expected=OrderState.DELIVERING,
            new=OrderState.NEEDS_ATTENTION,
            now=now,
            event="needs_attention",
            delivery_seq=record.delivery_seq,
            due_at=NOT_DUE,
            fields={"message": f"delivery failed: {error}"},
            increment=("delivery_attempts",),
            details=details,
        )
        logger.error(
            "deliver_keys: order %s needs attention: %s (attempt %d)",
            record.reference_id,
            error,
            attempt,
        )
        return summary(record.reference_id, OrderState.NEEDS_ATTENTION.value)

    # The retry is kept in the ledger as the order's due time, and the reconciler sends
    # it: a shop may be down for days, far longer than a broker countdown may last.
    delay_s = backoff_delay(
        attempt, base_s=DELIVERY_RETRY_BASE_S, max_s=rt.settings.delivery_retry_backoff_max_s
    )
    rt.ledger.transition(
        record.reference_id,
        expected=OrderState.DELIVERING,
        new=OrderState.DELIVERING,
        now=now,
        event="delivery_failed",
        delivery_seq=record.delivery_seq,
        due_at=now + delay_s,
        increment=("delivery_attempts",),
        details={**details, "retry_in_s": round(delay_s, 3)},
    )
    logger.warning(
        "deliver_keys: order %s: %s; attempt %d, retry in %.1f s",
        record.reference_id,
        error,
        attempt,
        delay_s,
    )
    return summary(record.reference_id, OrderState.DELIVERING.value)
