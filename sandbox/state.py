"""The mutable state of one simulator: account, stock, orders, rate limits, faults, statistics.

All money and stock changes happen under one lock, so that placing an order checks stock
and funds and charges them in one atomic step, as Erysta describes it.
"""

import logging
import random
import threading
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sandbox import status_codes
from sandbox.catalogue import PRODUCTS
from sandbox.config import SimulatorConfig
from sandbox.faults import FaultInjector
from sandbox.http import HttpError, utc_timestamp
from sandbox.orders import (
    Order,
    OrderLine,
    OrderRequest,
    advance,
    money_to_json,
    order_keys_data,
)
from sandbox.ratelimit import FixedWindowRateLimiter

logger = logging.getLogger(__name__)

ORDER_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ORDER_ID_LENGTH = 8
CENT = Decimal("0.01")


class SimulatorState:
    """Everything a simulator remembers between requests, safe for concurrent requests."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        # Order ids, keys and random faults are fake data, so a seedable generator that makes
        # runs repeatable is worth more than unpredictability.
        self._rng = random.Random(config.seed)  # noqa: S311
        self.rate_limiter = FixedWindowRateLimiter(config.rate_limit_per_minute)
        fault_rng = random.Random(config.seed)  # noqa: S311
        self.faults = FaultInjector(config.random_faults, fault_rng)
        self.reset()

    def reset(self) -> None:
        """Restore the configured account and stock, and clear orders, faults and counts."""
        with self._lock:
            self.balance = self.config.balance
            self.credit_limit = self.config.credit_limit
            self.stock: dict[str, int | None] = {p.id: p.stock for p in PRODUCTS}
            self.orders: dict[str, Order] = {}
            self.orders_by_reference: dict[str, list[Order]] = {}
            self.request_counts: Counter[tuple[str, str]] = Counter()
            self.rate_limiter.reset()
            self.faults.clear()

    def set_account(self, balance: Decimal | None, credit_limit: Decimal | None) -> None:
        with self._lock:
            if balance is not None:
                self.balance = balance.quantize(CENT)
            if credit_limit is not None:
                self.credit_limit = credit_limit.quantize(CENT)

    def balance_data(self) -> dict[str, Any]:
        with self._lock:
            return {
                "balance": money_to_json(self.balance),
                "credit_limit": money_to_json(self.credit_limit),
            }

    def place_order(self, api_key: str, request: OrderRequest) -> Order:
        """Check stock and funds, charge them and create the order, all or nothing.

        Raises HttpError (out of stock or insufficient funds) and then charges nothing.
        """
        with self._lock:
            self._check_stock(request)
            total = request.total_price.quantize(CENT)
            available = self.balance + self.credit_limit
            if total > available:
                raise HttpError(
                    status_codes.INSUFFICIENT_FUNDS,
                    f"insufficient funds: the order costs {total} EUR but balance plus "
                    f"credit limit is {available} EUR",
                )

            for item in request.items:
                left = self.stock[item.product.id]
                if left is not None:
                    self.stock[item.product.id] = left - item.quantity
            self.balance -= total

            order = Order(
                id=self._new_order_id(),
                api_key=api_key,
                reference_id=request.reference_id,
                lines=[OrderLine(item.product, item.quantity) for item in request.items],
                total_debit=total,
                created_at=datetime.now(UTC),
            )
            self.orders[order.id] = order
            if order.reference_id is not None:
                self.orders_by_reference.setdefault(order.reference_id, []).append(order)
            return order

    def _check_stock(self, request: OrderRequest) -> None:
        # One product may appear in several items, so sum the demand first.
        demand: Counter[str] = Counter()
        for item in request.items:
            demand[item.product.id] += item.quantity

        for product_id, quantity in demand.items():
            left = self.stock[product_id]
            if left is not None and left < quantity:
                raise HttpError(
                    status_codes.OUT_OF_STOCK,
                    f"out of stock: product {product_id} has {left} units, "
                    f"the order requests {quantity}",
                )

    def _new_order_id(self) -> str:
        while True:
            order_id = "".join(self._rng.choices(ORDER_ID_ALPHABET, k=ORDER_ID_LENGTH))
            if order_id not in self.orders:
                return order_id

    def poll_order(self, api_key: str, order_id: str) -> dict[str, Any]:
        """Advance the order by one key request and return ``details.data`` of the response.

        Raises HttpError 404 for an unknown order or one that another API key placed.
        """
        with self._lock:
            order = self.orders.get(order_id)
            if order is None or order.api_key != api_key:
                raise HttpError(status_codes.ORDER_NOT_FOUND, f"order {order_id!r} not found")

            settlement = advance(order, self.config.polls_per_step, self._rng)
            if settlement is not None:
                logger.info(
                    "order %s reference_id=%s settled as %s, refund %s EUR",
                    order.id,
                    order.reference_id,
                    order.status,
                    settlement.refund,
                )
                self.balance += settlement.refund
                for product_id, units in settlement.returned_stock.items():
                    left = self.stock[product_id]
                    if left is not None:
                        self.stock[product_id] = left + units
            return order_keys_data(order, self.balance, self.credit_limit)

    def orders_for_reference(self, reference_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "id": order.id,
                    "status": str(order.status),
                    "created_at": utc_timestamp(order.created_at),
                }
                for order in self.orders_by_reference.get(reference_id, [])
            ]

    def reference_counts(self) -> dict[str, int]:
        with self._lock:
            return {ref: len(orders) for ref, orders in self.orders_by_reference.items()}

    def count_request(self, endpoint: str, outcome: str) -> None:
        with self._lock:
            self.request_counts[endpoint, outcome] += 1

    def request_stats(self) -> dict[str, dict[str, int]]:
        """Return request counts as {endpoint: {status or "dropped": count}}."""
        with self._lock:
            stats: dict[str, dict[str, int]] = {}
            for (endpoint, outcome), count in sorted(self.request_counts.items()):
                stats.setdefault(endpoint, {})[outcome] = count
            return stats
