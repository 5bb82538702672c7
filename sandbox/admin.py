"""The simulator's admin endpoints under ``/_sandbox``, which need no API key.

Each endpoint is a function of the simulator state, the query string and the parsed JSON
body (None for requests without a body) that returns the response payload. They raise
HttpError 400 for an invalid body.
"""

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from sandbox.faults import InvalidFaultError, parse_fault_request
from sandbox.http import HttpError
from sandbox.state import SimulatorState

AdminEndpoint = Callable[[SimulatorState, str, Any], dict[str, Any]]


def arm_fault(state: SimulatorState, query: str, body: Any) -> dict[str, Any]:
    try:
        endpoint, plan, count = parse_fault_request(body)
    except InvalidFaultError as exc:
        raise HttpError(HTTPStatus.BAD_REQUEST, str(exc)) from None
    state.faults.arm(endpoint, plan, count)
    return list_faults(state, query, body)


def list_faults(state: SimulatorState, query: str, body: Any) -> dict[str, Any]:
    return {"armed": state.faults.describe_armed()}


def clear_faults(state: SimulatorState, query: str, body: Any) -> dict[str, Any]:
    state.faults.clear()
    return list_faults(state, query, body)


def list_orders(state: SimulatorState, query: str, body: Any) -> dict[str, Any]:
    """Return the orders of ``?reference_id=``, or the order count of every reference."""
    parameters = parse_qs(query, keep_blank_values=True)
    if "reference_id" not in parameters:
        return {"counts": state.reference_counts()}

    reference_id = parameters["reference_id"][0]
    orders = state.orders_for_reference(reference_id)
    return {"reference_id": reference_id, "count": len(orders), "orders": orders}


def request_stats(state: SimulatorState, query: str, body: Any) -> dict[str, Any]:
    return {"requests": state.request_stats()}


def set_account(state: SimulatorState, query: str, body: Any) -> dict[str, Any]:
    """Set ``balance`` and ``credit_limit``. Either may be left out."""
    if not isinstance(body, dict):
        raise HttpError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")

    balance = _parse_amount(body, "balance")
    credit_limit = _parse_amount(body, "credit_limit")
    if credit_limit is not None and credit_limit < 0:
        raise HttpError(HTTPStatus.BAD_REQUEST, "credit_limit must not be negative")

    state.set_account(balance, credit_limit)
    return state.balance_data()


def reset(state: SimulatorState, query: str, body: Any) -> dict[str, Any]:
    state.reset()
    return {"reset": True}


# Endpoints by method and path below /_sandbox. Those marked True read a JSON body.
ADMIN_ENDPOINTS: dict[tuple[str, str], tuple[AdminEndpoint, bool]] = {
    ("POST", "/faults"): (arm_fault, True),
    ("GET", "/faults"): (list_faults, False),
    ("DELETE", "/faults"): (clear_faults, False),
    ("GET", "/orders"): (list_orders, False),
    ("GET", "/stats"): (request_stats, False),
    ("POST", "/account"): (set_account, True),
    ("POST", "/reset"): (reset, False),
}


def _parse_amount(body: dict[str, Any], field: str) -> Decimal | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HttpError(HTTPStatus.BAD_REQUEST, f"{field} must be a decimal string or a number")

    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise HttpError(
            HTTPStatus.BAD_REQUEST, f"{field} must be a decimal number, got {value!r}"
        ) from None
    if not amount.is_finite():
        raise HttpError(HTTPStatus.BAD_REQUEST, f"{field} must be finite, got {value!r}")
    return amount
