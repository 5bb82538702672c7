"""The key vault: delivered keys, stored in Redis only encrypted.

Keys are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography`
package). Several encryption keys may be configured, newest first: new entries use the
newest, and any of them decrypts, so the encryption key can be rotated without losing
older orders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    """The vault cannot encrypt or decrypt; the message never contains a key."""


@dataclass(frozen=True)
class StoredKey:
    """One delivered key. Its value is never shown by `repr`."""

    type: str
    value: str

    def __repr__(self) -> str:
        return f"StoredKey(type={self.type!r}, value=<redacted {len(self.value)} chars>)"

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


@dataclass(frozen=True)
class StoredProduct:
    """One product of a finished order with the keys Erysta delivered for it."""

    product_id: str
    title: str
    quantity: int
    keys: tuple[StoredKey, ...]


def new_vault_key() -> str:
    """Return a new random Fernet key for the `VAULT_KEYS` setting."""
    return Fernet.generate_key().decode()


class KeyVault:
    """Encrypted key storage, one entry per order."""

    def __init__(self, client: redis.Redis, prefix: str, encryption_keys: Sequence[str]) -> None:
        if not encryption_keys:
            raise VaultError("the vault needs at least one encryption key")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in encryption_keys])
        except (ValueError, TypeError) as exc:
            raise VaultError(
                "an encryption key is invalid: each must be 32 url-safe base64-encoded bytes "
                "as `erysta-workers new-vault-key` prints"
            ) from exc
        self._redis = client
        self._prefix = prefix

    def _key(self, reference_id: str) -> str:
        return f"{self._prefix}:vault:{reference_id}"

    def store(self, reference_id: str, products: Sequence[StoredProduct]) -> None:
        document = [
            {
                "product_id": product.product_id,
                "title": product.title,
                "quantity": product.quantity,
                "keys": [key.to_json() for key in product.keys],
            }
            for product in products
        ]
        token = self._fernet.encrypt(json.dumps(document).encode())
        self._redis.set(self._key(reference_id), token)

    def load(self, reference_id: str) -> list[StoredProduct] | None:
        """Return the order's products with keys, or None when nothing is stored."""
        token = self._redis.get(self._key(reference_id))
        if token is None:
            return None
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken:
            raise VaultError(
                f"the keys of order {reference_id!r} cannot be decrypted with any configured "
                "encryption key; add the key they were stored with to VAULT_KEYS"
            ) from None
        return [
            StoredProduct(
                product_id=entry["product_id"],
                title=entry["title"],
                quantity=int(entry["quantity"]),
                keys=tuple(
                    StoredKey(type=key["type"], value=key["value"]) for key in entry["keys"]
                ),
            )
            for entry in json.loads(plain)
        ]
