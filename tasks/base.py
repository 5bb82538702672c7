"""The task class of the pipeline: what it sends to monitors carries no arguments or results.

Task arguments are only reference ids and results only a state, but Flower and anyone
reading Celery events need neither, so both are replaced before they leave the process.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.worker.request import Request

# The text that Flower and Celery events show in place of arguments and results.
HIDDEN = "<hidden>"


class QuietRequest(Request):
    """A worker-side request whose events carry no task result."""

    def send_event(self, type: str, **fields: Any) -> None:
        if "result" in fields:
            fields["result"] = HIDDEN
        super().send_event(type, **fields)


class PipelineTask(Task):  # type: ignore[type-arg]
    """A task whose messages show `<hidden>` as their arguments in events and Flower."""

    Request = "tasks.base:QuietRequest"

    def apply_async(  # type: ignore[override]
        self,
        args: Any = None,
        kwargs: Any = None,
        **options: Any,
    ) -> Any:
        options.setdefault("argsrepr", HIDDEN)
        options.setdefault("kwargsrepr", HIDDEN)
        return super().apply_async(args, kwargs, **options)
