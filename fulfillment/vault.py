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

    @property
    def _index_key(self) -> str:
        """Sorted set of the reference ids with stored keys, by the time they were stored."""
        return f"{self._prefix}:vault-index"

    def store(self, reference_id: str, products: Sequence[StoredProduct], *, now: float) -> None:
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
        with self._redis.pipeline(transaction=True) as pipeline:
            pipeline.set(self._key(reference_id), token)
            pipeline.zadd(self._index_key, {reference_id: now})
            pipeline.execute()

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

    def delete(self, reference_id: str) -> None:
        """Delete the order's keys for good."""
        with self._redis.pipeline(transaction=True) as pipeline:
            pipeline.delete(self._key(reference_id))
            pipeline.zrem(self._index_key, reference_id)
            pipeline.execute()

    def stored_before(self, cutoff: float, *, limit: int = 1000) -> list[str]:
        """Return the reference ids whose keys were stored before `cutoff`, oldest first."""
        members = self._redis.zrangebyscore(self._index_key, "-inf", cutoff, start=0, num=limit)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    def rotate(self) -> int:
        """Re-encrypt every entry with the newest encryption key; return how many."""
        rotated = 0
        for member in self._redis.zrange(self._index_key, 0, -1):
            reference_id = member.decode() if isinstance(member, bytes) else str(member)
            token = self._redis.get(self._key(reference_id))
            if token is None:
                continue
            try:
                new_token = self._fernet.rotate(token)
            except InvalidToken:
                raise VaultError(
                    f"the keys of order {reference_id!r} cannot be decrypted with any "
                    "configured encryption key; add the key they were stored with to VAULT_KEYS"
                ) from None
            self._redis.set(self._key(reference_id), new_token)
            rotated += 1
        return rotated
