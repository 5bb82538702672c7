"""Immutable values sent to and returned by the Erysta partner API.

Amounts are ``Decimal`` euros, exactly as Erysta sent them: ``990.4`` stays ``Decimal('990.4')``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "COMPLETED",
    "FAILED",
    "KNOWN_STATUSES",
    "KNOWN_TERMINAL_STATUSES",
    "NON_TERMINAL_STATUSES",
    "PARTIAL_COMPLETED",
    "PENDING",
    "PROCESSING",
    "REFUNDED",
    "Balance",
    "BalanceResult",
    "ErrorBody",
    "Key",
    "OrderItem",
    "OrderKeys",
    "PlacedOrder",
    "ProductKeys",
    "ResponseMeta",
]

# Order statuses. Erysta's docs say to keep polling only while an order is PENDING or
# PROCESSING, so the other four known values are terminal.
PENDING = "PENDING"
PROCESSING = "PROCESSING"
COMPLETED = "COMPLETED"
PARTIAL_COMPLETED = "PARTIAL_COMPLETED"
FAILED = "FAILED"
REFUNDED = "REFUNDED"

NON_TERMINAL_STATUSES = frozenset({PENDING, PROCESSING})
KNOWN_TERMINAL_STATUSES = frozenset({COMPLETED, PARTIAL_COMPLETED, FAILED, REFUNDED})
KNOWN_STATUSES = NON_TERMINAL_STATUSES | KNOWN_TERMINAL_STATUSES


@dataclass(frozen=True)
class Balance:
    """Account funds in EUR. ``balance`` goes negative while a credit line is in use."""

    balance: Decimal
    credit_limit: Decimal

    @property
    def spending_limit(self) -> Decimal:
        """Maximum total of new orders: the balance plus the credit line (0 without one)."""
        return self.balance + self.credit_limit


@dataclass(frozen=True)
class ResponseMeta:
    """Facts about one HTTP response, kept for logs, rate limiting and support requests.

    ``trace_id``, ``timestamp`` and ``cache`` come from the body's ``details.extensions``.
    The rate-limit fields come from the ``X-RateLimit``, ``X-RateLimit-Remaining`` and
    ``X-RateLimit-Reset`` (Unix seconds) headers. Every field but the HTTP status and the
    duration is ``None`` when missing or unparseable.
    """

    trace_id: str | None
    timestamp: str | None
    cache: str | None
    http_status: int
    duration_ms: float
    rate_limit: int | None
    rate_limit_remaining: int | None
    rate_limit_reset: int | None


@dataclass(frozen=True)
class OrderItem:
    """One line of a place-order request: an Erysta product id and a positive quantity."""

    product_id: str
    quantity: int

    def __post_init__(self) -> None:
        if not self.product_id.strip():
            raise ValueError("OrderItem.product_id must be a non-empty Erysta product id")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValueError(f"OrderItem.quantity must be an int, got {type(self.quantity)!r}")
        if self.quantity < 1:
            raise ValueError(f"OrderItem.quantity must be at least 1, got {self.quantity}")


@dataclass(frozen=True)
class PlacedOrder:
    """Erysta's acknowledgement of a new order: the id to poll for its keys."""

    order_id: str
    meta: ResponseMeta


@dataclass(frozen=True, repr=False)
class Key:
    """One delivered item: a text code, or for ``type == "image"`` a Base64 data URL.

    ``value`` is a secret that the shop's customer paid for, so ``repr`` and ``str`` show only
    its length. Other ``type`` strings are kept as received.
    """

    type: str
    value: str

    def __repr__(self) -> str:
        return f"Key(type={self.type!r}, value=<redacted {len(self.value)} chars>)"


@dataclass(frozen=True)
class ProductKeys:
    """The keys delivered so far for one product of an order."""

    product_id: str
    title: str
    quantity: int
    keys: tuple[Key, ...]


@dataclass(frozen=True)
class OrderKeys:
    """An order's status and delivered content, as returned by the keys endpoint.

    ``status`` is kept as received, including values that are not in ``KNOWN_STATUSES``.
    ``total_debit`` and ``balance`` are ``None`` when Erysta omits them.
    """

    order_id: str
    status: str
    products: tuple[ProductKeys, ...]
    total_debit: Decimal | None
    balance: Balance | None
    meta: ResponseMeta

    @property
    def is_terminal(self) -> bool:
        """Whether polling can stop: true only for the four known terminal statuses.

        An unknown status counts as still in progress, because stopping early could leave a
        paid order undelivered. The caller should warn when ``is_known_status`` is false.
        """
        return self.status in KNOWN_TERMINAL_STATUSES

    @property
    def is_known_status(self) -> bool:
        """Whether ``status`` is one of the six documented values."""
        return self.status in KNOWN_STATUSES


@dataclass(frozen=True)
class BalanceResult:
    """The account balance together with the response it came from."""

    balance: Balance
    meta: ResponseMeta


@dataclass(frozen=True)
class ErrorBody:
    """The ``error`` object of Erysta's failure envelope."""

    message: str
    timestamp: str | None
    trace_id: str | None
