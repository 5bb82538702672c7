"""Celery tasks of the order pipeline, and the API checkout code calls to enqueue orders."""

from tasks.api import (
    InvalidOrderError,
    OrderStatus,
    ReferenceConflictError,
    get_order,
    get_order_keys,
    submit_order,
)
from tasks.app import app
from tasks.delivering import deliver_keys
from tasks.placing import place_order
from tasks.polling import poll_order
from tasks.reconciling import reconcile
from tasks.retention import purge_keys

__all__ = [
    "InvalidOrderError",
    "OrderStatus",
    "ReferenceConflictError",
    "app",
    "deliver_keys",
    "get_order",
    "get_order_keys",
    "place_order",
    "poll_order",
    "purge_keys",
    "reconcile",
    "submit_order",
]
