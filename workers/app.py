"""The worker runtime: the Celery app with its tasks, start-up checks and per-process set-up.

Start a worker with `celery -A workers.app worker` and beat with `celery -A workers.app beat`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import beat_init, worker_init, worker_process_init

from tasks import app
from tasks.runtime import current_settings, reset_runtime, runtime
from workers.logs import configure_logging

logger = logging.getLogger(__name__)

__all__ = ["app"]

configure_logging()


@worker_init.connect
def check_worker_settings(**_: Any) -> None:
    """Fail at start-up, naming the variable, when a setting the worker needs is missing."""
    settings = current_settings()
    settings.require_api_key()
    settings.require_vault_keys()
    # Building the sinks imports the delivery callable, so a wrong path fails here.
    runtime().sinks  # noqa: B018
    logger.info(
        "worker starting: Erysta at %s, poll interval %g s, first poll after %g s, deadline %g s",
        settings.erysta_base_url,
        settings.poll_interval_s,
        settings.first_poll_delay_s,
        settings.poll_deadline_s,
    )


@beat_init.connect
def check_beat_settings(**_: Any) -> None:
    current_settings()


@worker_process_init.connect
def open_process_resources(**_: Any) -> None:
    """Give each forked pool process its own Redis connections and HTTP sessions."""
    reset_runtime()
