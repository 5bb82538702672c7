"""The worker runtime: the Celery app with its tasks, start-up checks and per-process set-up.

Start a worker with `celery -A workers.app worker` and beat with `celery -A workers.app beat`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_init, worker_process_init

from config import SettingsError
from fulfillment.vault import VaultError
from tasks import app
from tasks.app import configure_app
from tasks.runtime import current_settings, reset_runtime, runtime
from workers.logs import configure_logging

logger = logging.getLogger(__name__)

__all__ = ["app"]

# Every process that loads the app (worker, beat, Flower) reads its settings now, so an
# invalid value stops it at start-up with a message instead of a traceback later.
try:
    configure_app(current_settings())
except SettingsError as exc:
    raise SystemExit(f"invalid configuration: {exc}") from None

configure_logging(current_settings().log_level)


@worker_init.connect
def check_worker_settings(**_: Any) -> None:
    """Stop the worker at start-up, naming the variable, when a setting it needs is missing.

    Celery logs and ignores exceptions from signal handlers, so this exits instead.
    """
    try:
        settings = current_settings()
        settings.require_api_key()
        settings.require_vault_keys()
        # Building the vault and the sinks checks the keys and imports the delivery callable.
        runtime().vault  # noqa: B018
        runtime().sinks  # noqa: B018
    except VaultError as exc:
        raise SystemExit(f"invalid configuration: VAULT_KEYS is invalid: {exc}") from None
    except (SettingsError, ValueError) as exc:
        raise SystemExit(f"invalid configuration: {exc}") from None
    logger.info(
        "worker starting: Erysta at %s, poll interval %g s, first poll after %g s, deadline %g s",
        settings.erysta_base_url,
        settings.poll_interval_s,
        settings.first_poll_delay_s,
        settings.poll_deadline_s,
    )


@worker_process_init.connect
def open_process_resources(**_: Any) -> None:
    """Give each forked pool process its own Redis connections and HTTP sessions."""
    reset_runtime()
