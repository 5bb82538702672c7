"""The one clock seam: code that needs the time takes a `Clock` and calls it."""

from __future__ import annotations

import time
from collections.abc import Callable

# Seconds since the Unix epoch, as `time.time()` returns them.
Clock = Callable[[], float]

system_clock: Clock = time.time
