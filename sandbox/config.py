"""Settings of one simulator instance."""

from dataclasses import dataclass
from decimal import Decimal

from sandbox.faults import RandomFault

DEFAULT_API_KEY = "sandbox-key"
# Erysta's documented limit: 100 calls a minute.
DEFAULT_RATE_LIMIT_PER_MINUTE = 100
DEFAULT_BALANCE = Decimal("5000")
# Erysta grants a credit line only on request, so the default credit limit is 0.
DEFAULT_CREDIT_LIMIT = Decimal("0")


@dataclass(frozen=True)
class SimulatorConfig:
    """Accounts, limits and faults of a simulator. Amounts are in EUR.

    ``polls_per_step`` is how many key requests an order of a slow product stays in each of
    PENDING and PROCESSING. ``random_faults`` hit requests at random, drawn from a generator
    seeded with ``seed``, so that a run with a fixed seed injects the same faults each time
    if the requests arrive in the same order.
    """

    api_keys: frozenset[str] = frozenset({DEFAULT_API_KEY})
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE
    balance: Decimal = DEFAULT_BALANCE
    credit_limit: Decimal = DEFAULT_CREDIT_LIMIT
    polls_per_step: int = 1
    random_faults: tuple[RandomFault, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.api_keys:
            raise ValueError("SimulatorConfig.api_keys must contain at least one key")
        if self.rate_limit_per_minute < 1:
            raise ValueError(
                "SimulatorConfig.rate_limit_per_minute must be at least 1, "
                f"got {self.rate_limit_per_minute}"
            )
        if self.credit_limit < 0:
            raise ValueError(
                f"SimulatorConfig.credit_limit must not be negative, got {self.credit_limit}"
            )
        if self.polls_per_step < 0:
            raise ValueError(
                f"SimulatorConfig.polls_per_step must not be negative, got {self.polls_per_step}"
            )
