"""Settings: every tunable, read once from the environment into a validated, typed object.

`load_settings()` reads `os.environ` (or a mapping passed in) and raises `SettingsError`
naming the variable, the rule it broke and the value it got, unless the value is a secret.
Secrets may come from the variable itself or from a file named by `<NAME>_FILE`, the
convention Docker and Kubernetes secrets use.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from config.defaults import (
    DEFAULT_BROKER_VISIBILITY_TIMEOUT_S,
    DEFAULT_DELIVERY_RETRY_BACKOFF_MAX_S,
    DEFAULT_DELIVERY_RETRY_MAX_S,
    DEFAULT_ERYSTA_BASE_URL,
    DEFAULT_ERYSTA_CALLS_PER_MINUTE,
    DEFAULT_ERYSTA_CONNECT_TIMEOUT_S,
    DEFAULT_ERYSTA_READ_TIMEOUT_S,
    DEFAULT_FIRST_POLL_DELAY_S,
    DEFAULT_IMAGE_KEY_MAX_BYTES,
    DEFAULT_KEY_RETENTION_S,
    DEFAULT_LEDGER_PREFIX,
    DEFAULT_LOG_LEVEL,
    DEFAULT_PLACE_RETRY_LIMIT,
    DEFAULT_POLL_DEADLINE_S,
    DEFAULT_POLL_ERROR_BACKOFF_MAX_S,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_RECONCILE_INTERVAL_S,
    DEFAULT_REDIS_URL,
    DEFAULT_STEP_GRACE_S,
    DEFAULT_WEBHOOK_TIMEOUT_S,
)


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and what it accepts."""


class Secret:
    """A string that never shows itself in `repr`, `str` or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Validated settings. Every field ending in `_s` is a duration in seconds."""

    erysta_base_url: str = DEFAULT_ERYSTA_BASE_URL
    erysta_api_key: Secret | None = None
    erysta_connect_timeout_s: float = DEFAULT_ERYSTA_CONNECT_TIMEOUT_S
    erysta_read_timeout_s: float = DEFAULT_ERYSTA_READ_TIMEOUT_S
    erysta_calls_per_minute: int = DEFAULT_ERYSTA_CALLS_PER_MINUTE

    broker_url: str = DEFAULT_REDIS_URL
    result_backend_url: str = DEFAULT_REDIS_URL
    ledger_redis_url: str = DEFAULT_REDIS_URL
    ledger_prefix: str = DEFAULT_LEDGER_PREFIX
    broker_visibility_timeout_s: float = DEFAULT_BROKER_VISIBILITY_TIMEOUT_S

    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    first_poll_delay_s: float = DEFAULT_FIRST_POLL_DELAY_S
    poll_deadline_s: float = DEFAULT_POLL_DEADLINE_S
    poll_error_backoff_max_s: float = DEFAULT_POLL_ERROR_BACKOFF_MAX_S
    reconcile_interval_s: float = DEFAULT_RECONCILE_INTERVAL_S
    step_grace_s: float = DEFAULT_STEP_GRACE_S
    place_retry_limit: int = DEFAULT_PLACE_RETRY_LIMIT

    webhook_url: str | None = None
    webhook_secret: Secret | None = None
    webhook_timeout_s: float = DEFAULT_WEBHOOK_TIMEOUT_S
    delivery_retry_max_s: float = DEFAULT_DELIVERY_RETRY_MAX_S
    delivery_retry_backoff_max_s: float = DEFAULT_DELIVERY_RETRY_BACKOFF_MAX_S
    delivery_callable: str | None = None

    vault_keys: tuple[Secret, ...] = field(default=())
    key_retention_s: float = DEFAULT_KEY_RETENTION_S
    image_key_max_bytes: int = DEFAULT_IMAGE_KEY_MAX_BYTES

    flower_basic_auth: Secret | None = None

    log_level: str = DEFAULT_LOG_LEVEL

    def require_api_key(self) -> str:
        """Return the Erysta API key, or raise naming the variables that provide it."""
        if self.erysta_api_key is None:
            raise SettingsError(
                "ERYSTA_API_KEY is missing: set it, or ERYSTA_API_KEY_FILE to a file holding it"
            )
        return self.erysta_api_key.reveal()

    def require_vault_keys(self) -> list[str]:
        """Return the vault's encryption keys, newest first."""
        if not self.vault_keys:
            raise SettingsError(
                "VAULT_KEYS is missing: set it (or VAULT_KEYS_FILE) to one or more Fernet keys, "
                "newest first, separated by commas; create one with `erysta-workers new-vault-key`"
            )
        return [key.reveal() for key in self.vault_keys]

    def require_delivery(self) -> None:
        """Raise unless at least one way to deliver keys to the shop is configured."""
        if self.webhook_url is None and self.delivery_callable is None:
            raise SettingsError(
                "no delivery is configured: set WEBHOOK_URL (with WEBHOOK_SECRET) "
                "and/or DELIVERY_CALLABLE (a dotted path such as myshop.fulfil:deliver)"
            )


_CALLABLE_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_LEDGER_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise `SettingsError` on the first invalid one."""
    env = _Environment(os.environ if environ is None else environ)
    redis_url = env.url("REDIS_URL", DEFAULT_REDIS_URL, schemes=_REDIS_SCHEMES)

    settings = Settings(
        erysta_base_url=env.url(
            "ERYSTA_BASE_URL", DEFAULT_ERYSTA_BASE_URL, schemes=("https", "http")
        ).rstrip("/"),
        erysta_api_key=env.secret("ERYSTA_API_KEY"),
        erysta_connect_timeout_s=env.seconds(
            "ERYSTA_CONNECT_TIMEOUT_S", DEFAULT_ERYSTA_CONNECT_TIMEOUT_S
        ),
        erysta_read_timeout_s=env.seconds("ERYSTA_READ_TIMEOUT_S", DEFAULT_ERYSTA_READ_TIMEOUT_S),
        erysta_calls_per_minute=env.count(
            "ERYSTA_CALLS_PER_MINUTE", DEFAULT_ERYSTA_CALLS_PER_MINUTE
        ),
        broker_url=env.url("BROKER_URL", redis_url, schemes=_REDIS_SCHEMES),
        result_backend_url=env.url("RESULT_BACKEND_URL", redis_url, schemes=_REDIS_SCHEMES),
        ledger_redis_url=env.url("LEDGER_REDIS_URL", redis_url, schemes=_REDIS_SCHEMES),
        ledger_prefix=env.matching(
            "LEDGER_PREFIX",
            DEFAULT_LEDGER_PREFIX,
            _LEDGER_PREFIX,
            "1 to 64 letters, digits or _ . : -",
        ),
        broker_visibility_timeout_s=env.seconds(
            "BROKER_VISIBILITY_TIMEOUT_S", DEFAULT_BROKER_VISIBILITY_TIMEOUT_S
        ),
        poll_interval_s=env.seconds("POLL_INTERVAL_S", DEFAULT_POLL_INTERVAL_S),
        first_poll_delay_s=env.seconds("FIRST_POLL_DELAY_S", DEFAULT_FIRST_POLL_DELAY_S),
        poll_deadline_s=env.seconds("POLL_DEADLINE_S", DEFAULT_POLL_DEADLINE_S),
        poll_error_backoff_max_s=env.seconds(
            "POLL_ERROR_BACKOFF_MAX_S", DEFAULT_POLL_ERROR_BACKOFF_MAX_S
        ),
        reconcile_interval_s=env.seconds("RECONCILE_INTERVAL_S", DEFAULT_RECONCILE_INTERVAL_S),
        step_grace_s=env.seconds("STEP_GRACE_S", DEFAULT_STEP_GRACE_S),
        place_retry_limit=env.count("PLACE_RETRY_LIMIT", DEFAULT_PLACE_RETRY_LIMIT),
        webhook_url=env.optional_url("WEBHOOK_URL", schemes=("https", "http")),
        webhook_secret=env.secret("WEBHOOK_SECRET"),
        webhook_timeout_s=env.seconds("WEBHOOK_TIMEOUT_S", DEFAULT_WEBHOOK_TIMEOUT_S),
        delivery_retry_max_s=env.seconds("DELIVERY_RETRY_MAX_S", DEFAULT_DELIVERY_RETRY_MAX_S),
        delivery_retry_backoff_max_s=env.seconds(
            "DELIVERY_RETRY_BACKOFF_MAX_S", DEFAULT_DELIVERY_RETRY_BACKOFF_MAX_S
        ),
        delivery_callable=env.optional_matching(
            "DELIVERY_CALLABLE", _CALLABLE_PATH, "a dotted path such as myshop.fulfil:deliver"
        ),
        vault_keys=env.secret_list("VAULT_KEYS"),
        key_retention_s=env.seconds("KEY_RETENTION_S", DEFAULT_KEY_RETENTION_S),
        image_key_max_bytes=env.count("IMAGE_KEY_MAX_BYTES", DEFAULT_IMAGE_KEY_MAX_BYTES),
        flower_basic_auth=env.secret("FLOWER_BASIC_AUTH"),
        log_level=env.choice("LOG_LEVEL", DEFAULT_LOG_LEVEL, LOG_LEVELS),
    )
    _check_consistency(settings)
    return settings


_REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _check_consistency(settings: Settings) -> None:
    if settings.webhook_url is not None and settings.webhook_secret is None:
        raise SettingsError(
            "WEBHOOK_SECRET is missing: WEBHOOK_URL is set, and every webhook must be signed; "
            "set WEBHOOK_SECRET (or WEBHOOK_SECRET_FILE) to a whsec_ secret"
        )
    if settings.webhook_secret is not None and not _is_webhook_secret(
        settings.webhook_secret.reveal()
    ):
        raise SettingsError(
            "WEBHOOK_SECRET is invalid: expected whsec_ followed by base64; create one with "
            "`erysta-workers new-webhook-secret`"
        )
    if settings.first_poll_delay_s > settings.poll_deadline_s:
        raise SettingsError(
            f"FIRST_POLL_DELAY_S={settings.first_poll_delay_s:g} is invalid: it must not exceed "
            f"POLL_DEADLINE_S={settings.poll_deadline_s:g}"
        )
    # A Redis-broker message that is not acknowledged within the visibility timeout is
    # delivered again, so a countdown longer than that would run the task twice.
    longest_countdown_s = max(settings.poll_interval_s, settings.poll_error_backoff_max_s)
    if longest_countdown_s > settings.broker_visibility_timeout_s / 2:
        raise SettingsError(
            f"BROKER_VISIBILITY_TIMEOUT_S={settings.broker_visibility_timeout_s:g} is too short: "
            f"it must be at least twice the longest countdown ({longest_countdown_s:g} s, from "
            "POLL_INTERVAL_S and POLL_ERROR_BACKOFF_MAX_S)"
        )
    if settings.flower_basic_auth is not None:
        _check_basic_auth(settings.flower_basic_auth.reveal())
    for position, key in enumerate(settings.vault_keys, start=1):
        if not _is_fernet_key(key.reveal()):
            raise SettingsError(
                f"VAULT_KEYS is invalid: key {position} is not 32 url-safe base64-encoded "
                "bytes; create one with `erysta-workers new-vault-key`"
            )


def _is_webhook_secret(value: str) -> bool:
    """Tell whether `value` has the Standard Webhooks form `whsec_<base64 of the key>`."""
    prefix, _, encoded = value.partition("_")
    if prefix != "whsec" or not encoded:
        return False
    try:
        return bool(base64.b64decode(encoded, validate=True))
    except binascii.Error:
        return False


def _is_fernet_key(value: str) -> bool:
    """Tell whether `value` has the form of a Fernet key: 32 bytes in url-safe base64."""
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == FERNET_KEY_BYTES
    except (binascii.Error, ValueError):
        return False


FERNET_KEY_BYTES = 32


def _check_basic_auth(value: str) -> None:
    for pair in value.split(","):
        user, _, password = pair.partition(":")
        if not user or not password:
            raise SettingsError(
                "FLOWER_BASIC_AUTH is invalid: expected user:password pairs separated by commas"
            )


class _Environment:
    """Typed readers over an environment mapping; each error names the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _get(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def seconds(self, name: str, default: float) -> float:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(
                f"{name}={raw!r} is invalid: expected a number of seconds, such as 30 or 0.5"
            ) from None
        if not value > 0 or value == float("inf"):
            raise SettingsError(f"{name}={raw!r} is invalid: expected a positive, finite number")
        return value

    def count(self, name: str, default: int) -> int:
        raw = self._get(name)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise SettingsError(f"{name}={raw!r} is invalid: expected a whole number of 1 or more")
        return int(raw)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self._get(name)
        if raw is None:
            return default
        if raw.upper() not in choices:
            raise SettingsError(f"{name}={raw!r} is invalid: expected one of {', '.join(choices)}")
        return raw.upper()

    def url(self, name: str, default: str, *, schemes: tuple[str, ...]) -> str:
        raw = self._get(name)
        if raw is None:
            return default
        _check_url(name, raw, schemes)
        return raw

    def optional_url(self, name: str, *, schemes: tuple[str, ...]) -> str | None:
        raw = self._get(name)
        if raw is not None:
            _check_url(name, raw, schemes)
        return raw

    def matching(self, name: str, default: str, pattern: re.Pattern[str], accepted: str) -> str:
        value = self.optional_matching(name, pattern, accepted)
        return default if value is None else value

    def optional_matching(self, name: str, pattern: re.Pattern[str], accepted: str) -> str | None:
        raw = self._get(name)
        if raw is not None and not pattern.fullmatch(raw):
            raise SettingsError(f"{name}={raw!r} is invalid: expected {accepted}")
        return raw

    def secret(self, name: str) -> Secret | None:
        raw = self._get(name)
        file_name = self._get(f"{name}_FILE")
        if raw is not None and file_name is not None:
            raise SettingsError(f"{name} and {name}_FILE are both set: set only one of them")
        if file_name is not None:
            raw = _read_secret_file(f"{name}_FILE", file_name)
        return None if raw is None else Secret(raw)

    def secret_list(self, name: str) -> tuple[Secret, ...]:
        joined = self.secret(name)
        if joined is None:
            return ()
        parts = [part.strip() for part in joined.reveal().replace("\n", ",").split(",")]
        return tuple(Secret(part) for part in parts if part)


def _check_url(name: str, raw: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        raise SettingsError(
            f"{name} is invalid: expected a URL starting with "
            f"{' or '.join(scheme + '://' for scheme in schemes)}, got scheme {parts.scheme!r}"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise SettingsError(f"{name} is invalid: the URL has no host name")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise SettingsError(
            f"{name} is invalid: the port is not a number from 0 to 65535"
        ) from None


def _read_secret_file(name: str, path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(
            f"{name}={path!r} cannot be read: {exc.strerror}; point it at a readable file"
        ) from None
    if not text:
        raise SettingsError(f"{name}={path!r} is invalid: the file is empty")
    return text
