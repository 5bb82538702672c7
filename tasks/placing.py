"""`place_order`: send the order to Erysta once, and start polling it.

Placing is the one step that costs money, so it is never repeated when in doubt. The
order is marked `PLACING` before the request, and a task that finds it already `PLACING`
does nothing. A response (or its absence) that may or may not mean an order was created
moves it to `UNKNOWN_OUTCOME` for an operator. Only failures that prove the request was
not processed (connection refused, rate limited) are retried.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from erysta import (
    AuthenticationError,
    ErystaError,
    NonRetryableError,
    NotSentError,
    OrderItem,
    OutcomeUnknownError,
    PlacedOrder,
    RateLimitedError,
    ThrottledError,
)
from fulfillment.ledger import NOT_DUE
from fulfillment.records import OrderRecord
from fulfillment.schedule import backoff_delay
from fulfillment.states import OrderState
from tasks.app import app
from tasks.runtime import Runtime, runtime
from tasks.steps import call_details, due_at, error_details, summary, throttle_countdown

logger = logging.getLogger(__name__)

ENDPOINT = "POST /place-order"
# Seconds of the first retry after a request that never reached Erysta; it doubles.
PLACE_RETRY_BASE_S = 2.0


@app.task(name="tasks.place_order", bind=True, max_retries=None)
def place_order(self: Task[Any, Any], reference_id: str) -> dict[str, str]:
    """Place the order recorded under `reference_id`, unless it was placed already."""
    rt = runtime()
    record = rt.ledger.get(reference_id)
    if record is None:
        logger.error("place_order: order %s not found in the ledger", reference_id)
        return summary(reference_id, "NOT_FOUND")
    if not _claim(rt, record):
        return summary(reference_id, record.state.value)

    return _send(self, rt, record)


def _send(task: Task[Any, Any], rt: Runtime, record: OrderRecord) -> dict[str, str]:
    """POST the order once and move it on according to the response."""
    items = [OrderItem(item.product_id, item.quantity) for item in record.items]
    try:
        placed = rt.client.place_order(items, record.reference_id)
    except (NotSentError, RateLimitedError) as error:
        return _retry_unsent(task, rt, record, error)
    except OutcomeUnknownError as error:
        return _mark_unknown(rt, record, error)
    except AuthenticationError as error:
        return _flag(rt, record, error, "Erysta rejected the API key; check ERYSTA_API_KEY")
    except NonRetryableError as error:
        return _reject(rt, record, error)
    except ErystaError as error:
        return _mark_unknown(rt, record, error)
    return _start_polling(rt, record, placed)


def _claim(rt: Runtime, record: OrderRecord) -> bool:
    """Move the order from RECEIVED to PLACING; False when another task got there first."""
    now = rt.clock()
    timeouts_s = rt.settings.erysta_connect_timeout_s + rt.settings.erysta_read_timeout_s
    claimed = rt.ledger.transition(
        record.reference_id,
        expected=OrderState.RECEIVED,
        new=OrderState.PLACING,
        now=now,
        event="placing",
        due_at=due_at(rt, now, timeouts_s),
    )
    if not claimed:
        current = rt.ledger.get(record.reference_id)
        logger.info(
            "place_order: order %s is %s, not RECEIVED; not placing it again",
            record.reference_id,
            current.state.value if current else "missing",
        )
    return claimed


def _start_polling(rt: Runtime, record: OrderRecord, placed: PlacedOrder) -> dict[str, str]:
    from tasks.polling import poll_order  # noqa: PLC0415 - the modules enqueue each other

    now = rt.clock()
    first_delay_s = rt.settings.first_poll_delay_s
    moved = rt.ledger.transition(
        record.reference_id,
        expected=OrderState.PLACING,
        new=OrderState.POLLING,
        now=now,
        event="placed",
        due_at=due_at(rt, now, first_delay_s),
        fields={
            "erysta_order_id": placed.order_id,
            "placed_at": now,
            "next_action_at": now + first_delay_s,
        },
        increment=["poll_seq"],
        details={"erysta_order_id": placed.order_id, **call_details(ENDPOINT, placed.meta)},
    )
    if not moved:
        # The reconciler gave up on this request (it took longer than the timeouts
        # allow) and an operator now owns the order: leave the id where they will see it.
        rt.ledger.record_event(
            record.reference_id,
            now=now,
            event="placed_late",
            erysta_order_id=placed.order_id,
            **call_details(ENDPOINT, placed.meta),
        )
        logger.warning(
            "place_order: order %s was placed as Erysta order %s after it had left PLACING",
            record.reference_id,
            placed.order_id,
        )
        return summary(record.reference_id, "PLACED_LATE")

    logger.info(
        "place_order: order %s placed as Erysta order %s (trace %s)",
        record.reference_id,
        placed.order_id,
        placed.meta.trace_id,
    )
    poll_order.apply_async(
        args=(
            record.reference_id,
            1,
        ),
        countdown=first_delay_s,
    )
    return summary(record.reference_id, OrderState.POLLING.value)


def _retry_unsent(
    task: Task[Any, Any], rt: Runtime, record: OrderRecord, error: NotSentError | RateLimitedError
) -> dict[str, str]:
    if isinstance(error, ThrottledError):
        return _wait_for_limit(rt, record, error)
    now = rt.clock()
    attempt = task.request.retries + 1
    if attempt > rt.settings.place_retry_limit:
        return _flag(
            rt,
            record,
            error,
            f"Erysta could not be reached in {rt.settings.place_retry_limit} attempts; "
            "the order was not placed and can be re-queued",
        )

    delay_s = backoff_delay(
        attempt, base_s=PLACE_RETRY_BASE_S, max_s=rt.settings.poll_error_backoff_max_s
    )
    if isinstance(error, RateLimitedError) and error.retry_after_s is not None:
        delay_s = max(delay_s, min(error.retry_after_s, rt.settings.poll_error_backoff_max_s))
    rt.ledger.transition(
        record.reference_id,
        expected=OrderState.PLACING,
        new=OrderState.RECEIVED,
        now=now,
        event="place_retry",
        due_at=due_at(rt, now, delay_s),
        details={
            **error_details(ENDPOINT, error),
            "attempt": attempt,
            "limit": rt.settings.place_retry_limit,
            "delay_s": round(delay_s, 3),
        },
    )
    logger.warning(
        "place_order: order %s not sent (%s); retry %d of %d in %.1f s",
        record.reference_id,
        type(error).__name__,
        attempt,
        rt.settings.place_retry_limit,
        delay_s,
    )
    raise task.retry(countdown=delay_s, exc=error)


def _wait_for_limit(rt: Runtime, record: OrderRecord, error: ThrottledError) -> dict[str, str]:
    """Put the unsent order back and place it when the shared limit allows.

    A new message rather than a Celery retry, so that waiting for the limit does not use
    up PLACE_RETRY_LIMIT.
    """
    now = rt.clock()
    wait_s = throttle_countdown(rt, error.retry_after_s)
    rt.ledger.transition(
        record.reference_id,
        expected=OrderState.PLACING,
        new=OrderState.RECEIVED,
        now=now,
        event="throttled",
        due_at=due_at(rt, now, wait_s),
        details={"wait_s": round(wait_s, 3)},
    )
    place_order.apply_async(args=(record.reference_id,), countdown=wait_s)
    return summary(record.reference_id, OrderState.RECEIVED.value)


def _mark_unknown(rt: Runtime, record: OrderRecord, error: ErystaError) -> dict[str, str]:
    now = rt.clock()
    rt.ledger.transition(
        record.reference_id,
        expected=OrderState.PLACING,
        new=OrderState.UNKNOWN_OUTCOME,
        now=now,
        event="outcome_unknown",
        due_at=NOT_DUE,
        fields={"message": error.message},
        details=error_details(ENDPOINT, error),
    )
    logger.error(
        "place_order: order %s may or may not have been created (%s, HTTP %s, trace %s); "
        "an operator must resolve it",
        record.reference_id,
        type(error).__name__,
        error.http_status,
        error.trace_id,
    )
    return summary(record.reference_id, OrderState.UNKNOWN_OUTCOME.value)


def _reject(rt: Runtime, record: OrderRecord, error: ErystaError) -> dict[str, str]:
    from tasks.delivering import deliver_keys  # noqa: PLC0415 - the modules enqueue each other

    now = rt.clock()
    rt.ledger.transition(
        record.reference_id,
        expected=OrderState.PLACING,
        new=OrderState.REJECTED,
        now=now,
        event="rejected",
        due_at=due_at(rt, now),
        fields={"message": error.message, "outcome": OrderState.REJECTED},
        details=error_details(ENDPOINT, error),
    )
    logger.info(
        "place_order: Erysta rejected order %s (HTTP %s): %s",
        record.reference_id,
        error.http_status,
        error.message,
    )
    deliver_keys.apply_async(args=(record.reference_id,))
    return summary(record.reference_id, OrderState.REJECTED.value)


def _flag(rt: Runtime, record: OrderRecord, error: ErystaError, message: str) -> dict[str, str]:
    now = rt.clock()
    rt.ledger.transition(
        record.reference_id,
        expected=[OrderState.PLACING, OrderState.RECEIVED],
        new=OrderState.NEEDS_ATTENTION,
        now=now,
        event="needs_attention",
        due_at=NOT_DUE,
        fields={"message": message},
        details=error_details(ENDPOINT, error),
    )
    logger.error("place_order: order %s needs attention: %s", record.reference_id, message)
    return summary(record.reference_id, OrderState.NEEDS_ATTENTION.value)
