"""`poll_order`: read the order's status from Erysta until it is terminal.

Each poll loop carries a sequence number. A poll whose number is not the ledger's
`poll_seq` belongs to a loop that was replaced (by the reconciler, after a lost
message) and exits, so two loops for one order cannot both act.
"""

from __future__ import annotations

import logging

from erysta import (
    ErystaError,
    InvalidResponseError,
    NonRetryableError,
    OrderKeys,
    RateLimitedError,
    RetryableError,
    ThrottledError,
)
from fulfillment.images import image_key_problem
from fulfillment.ledger import NOT_DUE
from fulfillment.payload import format_money
from fulfillment.records import OrderRecord
from fulfillment.schedule import PollSchedule, backoff_delay
from fulfillment.states import OUTCOME_BY_ERYSTA_STATUS, OrderState
from fulfillment.vault import StoredKey, StoredProduct
from tasks.app import app
from tasks.runtime import Runtime, runtime
from tasks.steps import call_details, due_at, error_details, summary, throttle_countdown

logger = logging.getLogger(__name__)

ENDPOINT = "GET /orders/{id}/keys"


def poll_schedule(rt: Runtime) -> PollSchedule:
    return PollSchedule(
        first_delay_s=rt.settings.first_poll_delay_s,
        interval_s=rt.settings.poll_interval_s,
        deadline_s=rt.settings.poll_deadline_s,
    )


@app.task(name="tasks.poll_order")
def poll_order(reference_id: str, poll_seq: int) -> dict[str, str]:
    """Poll the order once; schedule the next poll, or store the outcome and deliver it."""
    rt = runtime()
    record = rt.ledger.get(reference_id)
    if record is None:
        logger.error("poll_order: order %s not found in the ledger", reference_id)
        return summary(reference_id, "NOT_FOUND")
    if record.state is not OrderState.POLLING or record.poll_seq != poll_seq:
        logger.info(
            "poll_order: order %s is %s with poll loop %d; this poll (loop %d) exits",
            reference_id,
            record.state.value,
            record.poll_seq,
            poll_seq,
        )
        return summary(reference_id, record.state.value)
    if record.erysta_order_id is None or record.placed_at is None:
        return _flag(rt, record, "the order is POLLING but has no Erysta order id", {})

    return _poll(rt, record, record.erysta_order_id)


def _poll(rt: Runtime, record: OrderRecord, erysta_order_id: str) -> dict[str, str]:
    """Read the order from Erysta once and move it on according to the response."""
    try:
        keys = rt.client.get_order_keys(erysta_order_id)
    except ThrottledError as error:
        # Not an error of the order's: poll again when the shared limit allows.
        wait_s = throttle_countdown(rt, error.retry_after_s)
        return _schedule_next(
            rt,
            record,
            event="throttled",
            details={"wait_s": round(wait_s, 3)},
            delay_s=wait_s,
            increment=(),
        )
    except (RetryableError, InvalidResponseError) as error:
        return _retry_after_error(rt, record, error)
    except NonRetryableError as error:
        return _flag(
            rt,
            record,
            f"polling Erysta order {erysta_order_id} failed: {error.message}",
            error_details(ENDPOINT, error),
        )

    if keys.is_terminal:
        return _finish(rt, record, keys)
    if not keys.is_known_status:
        logger.warning(
            "poll_order: order %s (Erysta %s) has unknown status %r; polling on",
            record.reference_id,
            erysta_order_id,
            keys.status,
        )
    # A successful poll ends a run of errors, so the next error backs off from the start.
    return _schedule_next(
        rt, record, event="polled", details=_poll_details(keys), fields={"error_count": 0}
    )


def _poll_details(keys: OrderKeys) -> dict[str, object]:
    return {"erysta_status": keys.status, **call_details(ENDPOINT, keys.meta)}


def _schedule_next(
    rt: Runtime,
    record: OrderRecord,
    *,
    event: str,
    details: dict[str, object],
    delay_s: float | None = None,
    increment: tuple[str, ...] = ("poll_count",),
    fields: dict[str, object] | None = None,
) -> dict[str, str]:
    now = rt.clock()
    assert record.placed_at is not None
    until_deadline_s = poll_schedule(rt).next_poll_delay(placed_at=record.placed_at, now=now)
    if until_deadline_s is None:
        return _flag(
            rt,
            record,
            f"Erysta order {record.erysta_order_id} is not finished "
            f"{rt.settings.poll_deadline_s:g} s after placing (POLL_DEADLINE_S)",
            details,
        )

    countdown_s = until_deadline_s if delay_s is None else min(delay_s, until_deadline_s)
    moved = rt.ledger.transition(
        record.reference_id,
        expected=OrderState.POLLING,
        new=OrderState.POLLING,
        now=now,
        event=event,
        poll_seq=record.poll_seq,
        due_at=due_at(rt, now, countdown_s),
        fields={"next_action_at": now + countdown_s, **(fields or {})},
        increment=increment,
        details={**details, "next_poll_in_s": round(countdown_s, 3)},
    )
    if moved:
        poll_order.apply_async(
            args=(
                record.reference_id,
                record.poll_seq,
            ),
            countdown=countdown_s,
        )
    return summary(record.reference_id, OrderState.POLLING.value)


def _retry_after_error(rt: Runtime, record: OrderRecord, error: ErystaError) -> dict[str, str]:
    attempt = record.error_count + 1
    delay_s = backoff_delay(
        attempt, base_s=rt.settings.poll_interval_s, max_s=rt.settings.poll_error_backoff_max_s
    )
    if isinstance(error, RateLimitedError) and error.retry_after_s is not None:
        delay_s = max(delay_s, min(error.retry_after_s, rt.settings.poll_error_backoff_max_s))
    logger.warning(
        "poll_order: polling order %s (Erysta %s) failed (%s, HTTP %s); attempt %d, next in %.1f s",
        record.reference_id,
        record.erysta_order_id,
        type(error).__name__,
        error.http_status,
        attempt,
        delay_s,
    )
    return _schedule_next(
        rt,
        record,
        event="poll_failed",
        details={**error_details(ENDPOINT, error), "attempt": attempt},
        delay_s=delay_s,
        increment=("error_count",),
    )


def _finish(rt: Runtime, record: OrderRecord, keys: OrderKeys) -> dict[str, str]:
    from tasks.delivering import deliver_keys  # noqa: PLC0415 - the modules enqueue each other

    outcome = OUTCOME_BY_ERYSTA_STATUS[keys.status]
    now = rt.clock()
    rt.vault.store(
        record.reference_id,
        [
            StoredProduct(
                product_id=product.product_id,
                title=product.title,
                quantity=product.quantity,
                keys=tuple(StoredKey(type=key.type, value=key.value) for key in product.keys),
            )
            for product in keys.products
        ],
        now=now,
    )
    problems = _image_problems(keys, max_bytes=rt.settings.image_key_max_bytes)
    moved = rt.ledger.transition(
        record.reference_id,
        expected=OrderState.POLLING,
        new=OrderState.NEEDS_ATTENTION if problems else outcome,
        now=now,
        event="finished",
        poll_seq=record.poll_seq,
        due_at=due_at(rt, now),
        fields={
            "erysta_status": keys.status,
            "outcome": outcome,
            "total_debit": "" if keys.total_debit is None else format_money(keys.total_debit),
            "message": "; ".join(problems),
        },
        increment=("poll_count",),
        details={
            **_poll_details(keys),
            "key_count": sum(len(product.keys) for product in keys.products),
        },
    )
    if not moved:
        return summary(record.reference_id, "STALE")
    if problems:
        # The keys stay in the vault; an operator checks them and may redeliver.
        logger.error(
            "poll_order: order %s has image keys that cannot be delivered: %s",
            record.reference_id,
            "; ".join(problems),
        )
        return summary(record.reference_id, OrderState.NEEDS_ATTENTION.value)

    logger.info(
        "poll_order: order %s (Erysta %s) finished as %s",
        record.reference_id,
        record.erysta_order_id,
        keys.status,
    )
    deliver_keys.apply_async(args=(record.reference_id,))
    return summary(record.reference_id, outcome.value)


def _image_problems(keys: OrderKeys, *, max_bytes: int) -> list[str]:
    """Describe each image key that cannot be delivered, by product and position only."""
    problems = []
    for product in keys.products:
        for position, key in enumerate(product.keys, start=1):
            if key.type != "image":
                continue
            problem = image_key_problem(key.value, max_bytes=max_bytes)
            if problem is not None:
                problems.append(
                    f"image key {position} of product {product.product_id} "
                    f"({product.title}): {problem}"
                )
    return problems


def _flag(
    rt: Runtime, record: OrderRecord, message: str, details: dict[str, object]
) -> dict[str, str]:
    now = rt.clock()
    rt.ledger.transition(
        record.reference_id,
        expected=OrderState.POLLING,
        new=OrderState.NEEDS_ATTENTION,
        now=now,
        event="needs_attention",
        poll_seq=record.poll_seq,
        due_at=NOT_DUE,
        fields={"message": message},
        details=details,
    )
    logger.error("poll_order: order %s needs attention: %s", record.reference_id, message)
    return summary(record.reference_id, OrderState.NEEDS_ATTENTION.value)
