"""Logging set-up for workers: one format, ids in every line, no payloads."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send logs to stderr at `level`, once per process."""
    root = logging.getLogger()
    if any(getattr(handler, "_erysta", False) for handler in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler._erysta = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG; requests to the shop or Erysta carry no secret in
    # the URL, but a proxy URL could carry credentials.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
