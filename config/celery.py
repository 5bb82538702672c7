"""Celery configuration derived from `Settings`, with the reason for each choice."""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from config.settings import Settings

PLACE_QUEUE = "erysta.place"
POLL_QUEUE = "erysta.poll"
DELIVER_QUEUE = "erysta.deliver"
MAINTENANCE_QUEUE = "erysta.maintenance"
ALL_QUEUES = (PLACE_QUEUE, POLL_QUEUE, DELIVER_QUEUE, MAINTENANCE_QUEUE)

# Seconds a worker may spend finishing its tasks after a first SIGTERM before it stops.
# The longest task is one supplier call, whose read timeout is 30 s by default.
SOFT_SHUTDOWN_TIMEOUT_S = 60.0
# Countdown tasks a worker keeps in memory at once. Past this it stops fetching, so a
# burst of scheduled polls cannot exhaust a worker's memory.
ETA_TASK_LIMIT = 1000
# Seconds a finished task's small state summary stays in the result backend.
RESULT_EXPIRES_S = 24 * 3600
# Seconds between Redis connection health checks, and the socket timeout, so that a
# dead connection is noticed instead of hanging a worker.
REDIS_HEALTH_CHECK_INTERVAL_S = 25
REDIS_SOCKET_TIMEOUT_S = 30.0
# Seconds between runs of the task that deletes keys past their retention period.
PURGE_INTERVAL_S = 3600.0


def celery_config(settings: Settings) -> dict[str, Any]:
    """Build the Celery configuration mapping for one process."""
    transport_options = {
        # The same value in every process that touches the broker: a message not
        # acknowledged within it is delivered again to another worker.
        "visibility_timeout": settings.broker_visibility_timeout_s,
        "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_S,
        "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL_S,
        "retry_on_timeout": True,
    }
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend_url,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s
        },
        "redis_socket_timeout": REDIS_SOCKET_TIMEOUT_S,
        "redis_socket_connect_timeout": REDIS_SOCKET_TIMEOUT_S,
        "redis_backend_health_check_interval": REDIS_HEALTH_CHECK_INTERVAL_S,
        "redis_retry_on_timeout": True,
        "broker_connection_retry_on_startup": True,
        # JSON only: pickle would let anyone who can write to Redis run code in a worker.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "result_expires": RESULT_EXPIRES_S,
        # The ledger records every outcome; stored results would only repeat it, and
        # Flower would show them.
        "task_ignore_result": True,
        "result_extended": False,
        "timezone": "UTC",
        "enable_utc": True,
        # One queue per step, so that a backlog of polls cannot starve new placements. A
        # worker started without -Q consumes all of them.
        "task_queues": [
            Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ALL_QUEUES
        ],
        "task_default_queue": PLACE_QUEUE,
        "task_routes": {
            "tasks.place_order": {"queue": PLACE_QUEUE},
            "tasks.poll_order": {"queue": POLL_QUEUE},
            "tasks.deliver_keys": {"queue": DELIVER_QUEUE},
            "tasks.reconcile": {"queue": MAINTENANCE_QUEUE},
            "tasks.purge_keys": {"queue": MAINTENANCE_QUEUE},
        },
        # Acknowledge after the task ran, so a killed worker's task is delivered again;
        # every task checks the ledger first, which makes the second run harmless.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Off on purpose. Cancelling a task when the broker connection drops stores a
        # retry state in the result backend, which is the same unreachable Redis, and in
        # Celery 5.6 that error stops the worker for good. Left running, the task ends
        # normally; its message is delivered again after the visibility timeout, and the
        # ledger turns that second run into a no-op.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_TIMEOUT_S,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_eta_task_limit": ETA_TASK_LIMIT,
        # Events feed Flower; task arguments are only reference ids and never secrets.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "reconcile": {
                "task": "tasks.reconcile",
                "schedule": settings.reconcile_interval_s,
                "options": {"queue": MAINTENANCE_QUEUE, "expires": settings.reconcile_interval_s},
            },
            "purge-keys": {
                "task": "tasks.purge_keys",
                "schedule": PURGE_INTERVAL_S,
                "options": {"queue": MAINTENANCE_QUEUE, "expires": PURGE_INTERVAL_S},
            },
        },
    }
