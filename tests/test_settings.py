"""Settings: defaults, validation messages, secrets from files, hidden secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import SettingsError, load_settings
from config.defaults import DEFAULT_ERYSTA_BASE_URL, DEFAULT_POLL_INTERVAL_S
from fulfillment.vault import new_vault_key

VAULT_KEY = new_vault_key()


def test_defaults_without_environment() -> None:
    settings = load_settings({})

    assert settings.erysta_base_url == DEFAULT_ERYSTA_BASE_URL
    assert settings.poll_interval_s == DEFAULT_POLL_INTERVAL_S == 30.0
    assert settings.erysta_api_key is None
    assert settings.webhook_url is None


def test_redis_url_feeds_broker_backend_and_ledger() -> None:
    settings = load_settings({"REDIS_URL": "redis://example:6380/2"})

    assert settings.broker_url == "redis://example:6380/2"
    assert settings.result_backend_url == "redis://example:6380/2"
    assert settings.ledger_redis_url == "redis://example:6380/2"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("POLL_INTERVAL_S", "soon", "POLL_INTERVAL_S='soon' is invalid: expected a number"),
        ("POLL_INTERVAL_S", "-1", "POLL_INTERVAL_S='-1' is invalid: expected a positive"),
        ("POLL_INTERVAL_S", "0", "POLL_INTERVAL_S='0' is invalid"),
        ("POLL_DEADLINE_S", "inf", "POLL_DEADLINE_S='inf' is invalid"),
        ("ERYSTA_READ_TIMEOUT_S", "nan", "ERYSTA_READ_TIMEOUT_S='nan' is invalid"),
        ("ERYSTA_BASE_URL", "ftp://x/v1", "ERYSTA_BASE_URL is invalid: expected a URL"),
        ("ERYSTA_BASE_URL", "https:///v1", "ERYSTA_BASE_URL is invalid: the URL has no host"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL is invalid"),
        ("LEDGER_PREFIX", "has space", "LEDGER_PREFIX='has space' is invalid"),
        ("DELIVERY_CALLABLE", "not a path", "DELIVERY_CALLABLE='not a path' is invalid"),
        ("PLACE_RETRY_LIMIT", "0", "PLACE_RETRY_LIMIT='0' is invalid"),
        ("FLOWER_BASIC_AUTH", "admin", "FLOWER_BASIC_AUTH is invalid"),
        ("VAULT_KEYS", "notakey", "VAULT_KEYS is invalid: key 1 is not 32"),
        ("WEBHOOK_URL", "https://shop.example/hook", "WEBHOOK_SECRET is missing"),
        ("WEBHOOK_SECRET", "whsec_not base64!", "WEBHOOK_SECRET is invalid"),
        ("WEBHOOK_SECRET", "whsec_", "WEBHOOK_SECRET is invalid"),
        ("REDIS_URL", "redis://127.0.0.1:99999/0", "REDIS_URL is invalid: the port"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is invalid: expected one of DEBUG"),
    ],
)
def test_invalid_value_names_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value})

    assert expected in str(raised.value)


def test_secret_value_not_echoed() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"WEBHOOK_URL": "https://shop.example/h", "WEBHOOK_SECRET": "plain-secret"})

    assert "WEBHOOK_SECRET is invalid" in str(raised.value)
    assert "plain-secret" not in str(raised.value)


def test_countdown_longer_than_half_visibility_rejected() -> None:
    with pytest.raises(SettingsError, match="BROKER_VISIBILITY_TIMEOUT_S"):
        load_settings({"BROKER_VISIBILITY_TIMEOUT_S": "100", "POLL_INTERVAL_S": "60"})


def test_api_key_from_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key\n", encoding="utf-8")

    settings = load_settings({"ERYSTA_API_KEY_FILE": str(key_file)})

    assert settings.require_api_key() == "file-key"


def test_api_key_and_file_both_set_rejected(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key", encoding="utf-8")

    with pytest.raises(SettingsError, match="only one"):
        load_settings({"ERYSTA_API_KEY": "k", "ERYSTA_API_KEY_FILE": str(key_file)})


def test_unreadable_secret_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent"

    with pytest.raises(SettingsError, match=r"ERYSTA_API_KEY_FILE=.*cannot be read"):
        load_settings({"ERYSTA_API_KEY_FILE": str(missing)})


def test_missing_api_key_says_how_to_set_it() -> None:
    with pytest.raises(SettingsError, match="ERYSTA_API_KEY_FILE"):
        load_settings({}).require_api_key()


def test_missing_delivery_says_how_to_set_it() -> None:
    with pytest.raises(SettingsError, match=r"WEBHOOK_URL .*DELIVERY_CALLABLE"):
        load_settings({}).require_delivery()


def test_vault_keys_split_newest_first() -> None:
    new, old = new_vault_key(), new_vault_key()

    settings = load_settings({"VAULT_KEYS": f"{new}, {old}"})

    assert settings.require_vault_keys() == [new, old]


def test_repr_hides_secrets() -> None:
    settings = load_settings(
        {
            "ERYSTA_API_KEY": "api-key-value",
            "WEBHOOK_URL": "https://shop.example/h",
            "WEBHOOK_SECRET": "whsec_c2VjcmV0LXZhbHVl",
            "VAULT_KEYS": VAULT_KEY,
            "FLOWER_BASIC_AUTH": "admin:flower-password",
        }
    )

    text = repr(settings)
    for secret in ("api-key-value", "c2VjcmV0LXZhbHVl", VAULT_KEY, "flower-password"):
        assert secret not in text
