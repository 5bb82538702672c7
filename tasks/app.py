"""The Celery app. Its configuration is read from the environment on first use.

The app lives in the tasks layer because checkout code needs it to enqueue orders
without importing the worker runtime.
"""

from __future__ import annotations

from celery import Celery

from config import Settings
from config.celery import celery_config
from tasks.runtime import current_settings

app = Celery("erysta", task_cls="tasks.base:PipelineTask")
# A promise: the settings are read when the configuration is first needed, so that a
# process can set its environment after import but before it enqueues anything.
app.add_defaults(lambda: celery_config(current_settings()))


def configure_app(settings: Settings) -> None:
    """Apply `settings` to the app, in place of those read from the environment at first use.

    Call it before the first task is sent: connections already open keep their broker.
    """
    app.conf.update(celery_config(settings))
