"""Description of one Erysta API endpoint, used by the client and by ``erysta.failures``.

``read_only`` marks the endpoints whose calls may be repeated after a failure, so it also
decides which error class a failed call becomes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Endpoint"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path_template: str
    # False for place-order: a request that may have been processed must not be repeated.
    read_only: bool

    @property
    def name(self) -> str:
        return f"{self.method} {self.path_template}"
