"""The order ledger in Redis: one hash per order, a timeline list, and a due-time index.

Every write is one Lua script, so it is atomic. `create` writes only when no record
exists for the `reference_id`. `transition` changes state only from the expected state,
and optionally only at the expected poll or delivery sequence number. So a task that runs
twice, late or beside another copy of itself fails harmlessly instead of acting twice.

Keys, under the configured prefix `P`:

- `P:order:<reference_id>`: hash of the `OrderRecord` fields
- `P:timeline:<reference_id>`: list of JSON events, oldest first
- `P:due`: sorted set of reference ids by the time their next step is overdue
- `P:created`: sorted set of reference ids by creation time
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from fulfillment.records import LineItem, OrderRecord
from fulfillment.states import OrderState

# KEYS: order, timeline, due, created. ARGV: reference id, now, due time, event JSON,
# then field/value pairs. Returns 1 when it created the record, 0 when one existed.
_CREATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return 1
"""

# KEYS: order, timeline, due.
# ARGV[1] reference id, ARGV[2] expected states joined by commas, ARGV[3] new state.
# ARGV[4] new due time: '' keeps it, and '-' removes the order from the due index.
# ARGV[5] JSON list of counter fields to increment.
# ARGV[6] guard field ('' for none), ARGV[7] the value the guard field must have.
# ARGV[8] event JSON, then field/value pairs to set.
# Returns 1 on success, 0 when the state or the guard did not match, -1 without a record.
_TRANSITION_SCRIPT = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return -1
end
local expected = false
for candidate in string.gmatch(ARGV[2], '[^,]+') do
  if candidate == state then
    expected = true
  end
end
if not expected then
  return 0
end
if ARGV[6] ~= '' and (redis.call('HGET', KEYS[1], ARGV[6]) or '0') ~= ARGV[7] then
  return 0
end
if #ARGV >= 9 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 9))
end
for _, field in ipairs(cjson.decode(ARGV[5])) do
  redis.call('HINCRBY', KEYS[1], field, 1)
end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[8])
if ARGV[4] == '-' then
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
return 1
"""

KEEP_DUE = ""
NOT_DUE = "-"


@dataclass(frozen=True)
class CreateResult:
    """The record for a `reference_id`, and whether this call created it."""

    record: OrderRecord
    created: bool


class Ledger:
    """Order records in Redis, changed only by compare-and-set."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._create = client.register_script(_CREATE_SCRIPT)
        self._transition = client.register_script(_TRANSITION_SCRIPT)

    def order_key(self, reference_id: str) -> str:
        return f"{self._prefix}:order:{reference_id}"

    def timeline_key(self, reference_id: str) -> str:
        return f"{self._prefix}:timeline:{reference_id}"

    @property
    def due_key(self) -> str:
        return f"{self._prefix}:due"

    @property
    def created_key(self) -> str:
        return f"{self._prefix}:created"

    def create(
        self, reference_id: str, items: Iterable[LineItem], *, now: float, due_at: float
    ) -> CreateResult:
        """Create a `RECEIVED` record unless one exists; return the record either way."""
        item_list = [item.to_json() for item in items]
        fields = {
            "reference_id": reference_id,
            "state": OrderState.RECEIVED.value,
            "items": json.dumps(item_list, separators=(",", ":")),
            "created_at": repr(now),
            "updated_at": repr(now),
            "next_action_at": repr(now),
        }
        event = _event(now, "received", to=OrderState.RECEIVED.value, items=item_list)
        created = self._create(
            keys=[
                self.order_key(reference_id),
                self.timeline_key(reference_id),
                self.due_key,
                self.created_key,
            ],
            args=[reference_id, repr(now), repr(due_at), event, *_flatten(fields)],
        )
        record = self.get(reference_id)
        if record is None:
            raise RuntimeError(f"order {reference_id!r} vanished right after it was created")
        return CreateResult(record=record, created=bool(created))

    def get(self, reference_id: str) -> OrderRecord | None:
        data = self._redis.hgetall(self.order_key(reference_id))
        if not data:
            return None
        return OrderRecord.from_hash(_decode_hash(data))

    def transition(
        self,
        reference_id: str,
        *,
        expected: OrderState | Iterable[OrderState],
        new: OrderState,
        now: float,
        event: str,
        due_at: float | str = KEEP_DUE,
        fields: Mapping[str, object] | None = None,
        increment: Iterable[str] = (),
        poll_seq: int | None = None,
        delivery_seq: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Move the order to `new` if it is in `expected`; return whether it moved.

        `poll_seq` or `delivery_seq`, when given, must also match the record's, so that a
        stale poll loop or delivery cannot change an order that a newer one owns.
        """
        guard_field, guard_value = "", ""
        if poll_seq is not None:
            guard_field, guard_value = "poll_seq", str(poll_seq)
        elif delivery_seq is not None:
            guard_field, guard_value = "delivery_seq", str(delivery_seq)
        expected_states = [expected] if isinstance(expected, OrderState) else list(expected)
        all_fields = {"updated_at": repr(now), **(fields or {})}
        timeline_entry = _event(
            now,
            event,
            expected=[state.value for state in expected_states],
            to=new.value,
            **(details or {}),
        )
        result = self._transition(
            keys=[self.order_key(reference_id), self.timeline_key(reference_id), self.due_key],
            args=[
                reference_id,
                ",".join(state.value for state in expected_states),
                new.value,
                due_at if isinstance(due_at, str) else repr(due_at),
                json.dumps(list(increment)),
                guard_field,
                guard_value,
                timeline_entry,
                *_flatten({name: _to_field(value) for name, value in all_fields.items()}),
            ],
        )
        if result == -1:
            raise KeyError(f"order {reference_id!r} not found in the ledger")
        return bool(result == 1)

    def record_event(
        self,
        reference_id: str,
        *,
        now: float,
        event: str,
        fields: Mapping[str, object] | None = None,
        **details: Any,
    ) -> None:
        """Append an event that changes no state, and set `fields` with it, atomically."""
        with self._redis.pipeline(transaction=True) as pipeline:
            if fields:
                pipeline.hset(
                    self.order_key(reference_id),
                    mapping={name: _to_field(value) for name, value in fields.items()},
                )
            pipeline.rpush(self.timeline_key(reference_id), _event(now, event, **details))
            pipeline.execute()

    def timeline(self, reference_id: str) -> list[dict[str, Any]]:
        entries = self._redis.lrange(self.timeline_key(reference_id), 0, -1)
        return [json.loads(entry) for entry in entries]

    def due(self, *, now: float, limit: int = 100) -> list[str]:
        """Return reference ids whose next step is overdue at `now`, oldest first."""
        members = self._redis.zrangebyscore(self.due_key, "-inf", now, start=0, num=limit)
        return [_decode(member) for member in members]  # type: ignore[arg-type]

    def reference_ids(self, *, limit: int = 1000, newest_first: bool = True) -> list[str]:
        members = self._redis.zrange(self.created_key, 0, limit - 1, desc=newest_first)
        return [_decode(member) for member in members]  # type: ignore[arg-type]


def _event(now: float, event: str, **details: Any) -> str:
    return json.dumps({"at": now, "event": event, **details}, separators=(",", ":"))


def _to_field(value: object) -> str:
    if isinstance(value, OrderState):
        return value.value
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)


def _flatten(fields: Mapping[str, str]) -> list[str]:
    flat: list[str] = []
    for name, value in fields.items():
        flat.extend((name, value))
    return flat


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode_hash(data: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_decode(name): _decode(value) for name, value in data.items()}
