"""Faults that the simulator injects into API requests, armed by tests or drawn at random.

A fault applies to one endpoint. Faults armed through ``POST /_sandbox/faults`` apply to the
next ``count`` requests of that endpoint, in the order they were armed, and take precedence
over the random faults of ``SimulatorConfig.random_faults``. ``unknown_status`` applies only
to the keys endpoint, so arming it for another endpoint is rejected.
"""

import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar


class Endpoint(StrEnum):
    """An endpoint of the simulated API, as named in fault requests and statistics."""

    BALANCE = "balance"
    PLACE_ORDER = "place-order"
    KEYS = "keys"


class Fault(StrEnum):
    """A way to break one request. The ``*_after_create`` faults do the request's work first."""

    SERVER_ERROR = "server_error"  # 500 before doing anything
    SERVER_ERROR_AFTER_CREATE = "server_error_after_create"  # 500 after doing the work
    DROP = "drop"  # close the connection without doing anything
    DROP_AFTER_CREATE = "drop_after_create"  # close the connection after doing the work
    SLOW = "slow"  # do the work, wait delay_s, then respond normally
    MALFORMED_JSON = "malformed_json"  # do the work, then send 200 with truncated JSON
    RATE_LIMITED = "rate_limited"  # 429 with the documented body, without doing anything
    NOT_FOUND = "not_found"  # 404 without doing anything
    UNAUTHORIZED = "unauthorized"  # 401 without doing anything
    # Keys endpoint only: 200 with the order's data, but an undocumented status and no keys.
    # The order does not advance, so the next normal request continues where it was.
    UNKNOWN_STATUS = "unknown_status"

    @property
    def runs_before_work(self) -> bool:
        return self in (
            Fault.SERVER_ERROR,
            Fault.DROP,
            Fault.RATE_LIMITED,
            Fault.NOT_FOUND,
            Fault.UNAUTHORIZED,
        )

    def supports(self, endpoint: Endpoint | None) -> bool:
        """Return whether the fault can hit ``endpoint``. None means every endpoint."""
        if self is Fault.UNKNOWN_STATUS:
            return endpoint is Endpoint.KEYS
        return True


# Defaults for fault requests that leave the field out.
DEFAULT_FAULT_DELAY_S = 2.0
DEFAULT_RETRY_AFTER_S = 1
# Upper bound for delay_s, so that a typo cannot hang a test run for hours.
MAX_FAULT_DELAY_S = 60.0


_Choice = TypeVar("_Choice", bound=StrEnum)


class InvalidFaultError(ValueError):
    """A fault request or setting with a missing or invalid field. The message names it."""


@dataclass(frozen=True)
class FaultPlan:
    """The fault chosen for one request."""

    fault: Fault
    delay_s: float = DEFAULT_FAULT_DELAY_S
    retry_after_s: int = DEFAULT_RETRY_AFTER_S


@dataclass(frozen=True)
class RandomFault:
    """A fault that hits each request of ``endpoint`` (or of every endpoint if None) with
    the given probability."""

    fault: Fault
    probability: float
    endpoint: Endpoint | None = None
    delay_s: float = DEFAULT_FAULT_DELAY_S

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise InvalidFaultError(
                f"RandomFault.probability must be between 0 and 1, got {self.probability}"
            )
        if not self.fault.supports(self.endpoint):
            raise InvalidFaultError(
                f"RandomFault.endpoint must be {Endpoint.KEYS} for fault {self.fault}, "
                f"got {self.endpoint}"
            )


@dataclass
class _ArmedFault:
    endpoint: Endpoint
    plan: FaultPlan
    remaining: int


class FaultInjector:
    """Armed and random faults, safe to use from several request threads."""

    def __init__(self, random_faults: Iterable[RandomFault], rng: random.Random) -> None:
        self._random_faults = tuple(random_faults)
        self._rng = rng
        self._armed: deque[_ArmedFault] = deque()
        self._lock = threading.Lock()

    def arm(self, endpoint: Endpoint, plan: FaultPlan, count: int) -> None:
        with self._lock:
            self._armed.append(_ArmedFault(endpoint, plan, count))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def describe_armed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "endpoint": str(armed.endpoint),
                    "fault": str(armed.plan.fault),
                    "remaining": armed.remaining,
                    "delay_s": armed.plan.delay_s,
                    "retry_after_s": armed.plan.retry_after_s,
                }
                for armed in self._armed
            ]

    def take(self, endpoint: Endpoint) -> FaultPlan | None:
        """Return the fault for the next request of ``endpoint`` and use it up, or None."""
        with self._lock:
            for armed in self._armed:
                if armed.endpoint is endpoint:
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._armed.remove(armed)
                    return armed.plan

            for random_fault in self._random_faults:
                matches = random_fault.endpoint in (None, endpoint)
                if matches and self._rng.random() < random_fault.probability:
                    return FaultPlan(random_fault.fault, delay_s=random_fault.delay_s)
        return None


def parse_fault_request(body: Any) -> tuple[Endpoint, FaultPlan, int]:
    """Validate the body of ``POST /_sandbox/faults`` and return endpoint, plan and count."""
    if not isinstance(body, dict):
        raise InvalidFaultError("the request body must be a JSON object")

    endpoint = _parse_choice(body, "endpoint", Endpoint)
    fault = _parse_choice(body, "fault", Fault)
    if not fault.supports(endpoint):
        raise InvalidFaultError(
            f"endpoint must be {Endpoint.KEYS} for fault {fault}, got {str(endpoint)!r}"
        )

    count = body.get("count", 1)
    if not _is_int(count) or count < 1:
        raise InvalidFaultError(f"count must be a positive integer, got {count!r}")

    delay_s = body.get("delay_s", DEFAULT_FAULT_DELAY_S)
    if not _is_number(delay_s) or not 0 <= delay_s <= MAX_FAULT_DELAY_S:
        raise InvalidFaultError(
            f"delay_s must be a number from 0 to {MAX_FAULT_DELAY_S}, got {delay_s!r}"
        )

    retry_after_s = body.get("retry_after_s", DEFAULT_RETRY_AFTER_S)
    if not _is_int(retry_after_s) or retry_after_s < 0:
        raise InvalidFaultError(
            f"retry_after_s must be a non-negative integer, got {retry_after_s!r}"
        )

    return endpoint, FaultPlan(fault, float(delay_s), retry_after_s), count


def _parse_choice(body: dict[str, Any], field: str, choices: type[_Choice]) -> _Choice:
    value = body.get(field)
    try:
        return choices(str(value))
    except ValueError:
        allowed = ", ".join(str(choice) for choice in choices)
        raise InvalidFaultError(f"{field} must be one of {allowed}, got {value!r}") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
