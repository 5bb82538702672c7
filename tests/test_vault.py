"""The key vault: encrypted at rest, rotation, and no key in any repr."""

from __future__ import annotations

import secrets

import pytest
import redis

from fulfillment.vault import KeyVault, StoredKey, StoredProduct, VaultError, new_vault_key

PRODUCTS = [
    StoredProduct(
        product_id="69ae19b4397b2e44c02853f5",
        title="Test Product - TXT",
        quantity=1,
        keys=(StoredKey(type="text", value="SECRET-KEY-VALUE"),),
    )
]


def prefix() -> str:
    return "vault-test-" + secrets.token_hex(4)


def test_round_trip(redis_client: redis.Redis) -> None:
    vault = KeyVault(redis_client, prefix(), [new_vault_key()])

    vault.store("R-1", PRODUCTS, now=100.0)

    assert vault.load("R-1") == PRODUCTS


def test_stored_only_encrypted(redis_client: redis.Redis) -> None:
    name = prefix()
    vault = KeyVault(redis_client, name, [new_vault_key()])

    vault.store("R-1", PRODUCTS, now=100.0)

    raw = redis_client.get(f"{name}:vault:R-1")
    assert raw is not None
    assert b"SECRET-KEY-VALUE" not in raw


def test_missing_entry_is_none(redis_client: redis.Redis) -> None:
    assert KeyVault(redis_client, prefix(), [new_vault_key()]).load("R-none") is None


def test_old_key_still_decrypts_after_rotation(redis_client: redis.Redis) -> None:
    name = prefix()
    old_key, new_key = new_vault_key(), new_vault_key()
    KeyVault(redis_client, name, [old_key]).store("R-1", PRODUCTS, now=100.0)

    rotated = KeyVault(redis_client, name, [new_key, old_key])

    assert rotated.load("R-1") == PRODUCTS


def test_unknown_key_raises_without_value(redis_client: redis.Redis) -> None:
    name = prefix()
    KeyVault(redis_client, name, [new_vault_key()]).store("R-1", PRODUCTS, now=100.0)

    with pytest.raises(VaultError, match="VAULT_KEYS") as raised:
        KeyVault(redis_client, name, [new_vault_key()]).load("R-1")
    assert "SECRET-KEY-VALUE" not in str(raised.value)


def test_invalid_encryption_key_rejected(redis_client: redis.Redis) -> None:
    with pytest.raises(VaultError, match="invalid"):
        KeyVault(redis_client, prefix(), ["not-a-fernet-key"])


def test_repr_hides_key_value() -> None:
    assert "SECRET-KEY-VALUE" not in repr(PRODUCTS)
