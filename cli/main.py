"""`erysta-workers`: place and inspect orders, run the simulator, run the demo."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import redis

from config import SettingsError
from fulfillment.states import OrderState

if TYPE_CHECKING:
    from tasks.api import OrderStatus


class _Commands(click.Group):
    """The command group; it turns configuration and Redis errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise click.ClickException(f"invalid configuration: {exc}") from None
        except redis.RedisError as exc:
            raise click.ClickException(
                f"Redis failed: {exc}; check that it runs and that REDIS_URL points at it"
            ) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Buy digital goods from Erysta and deliver the keys to the shop."""


def _parse_item(value: str) -> dict[str, Any]:
    product_id, _, quantity = value.partition(":")
    if not quantity:
        return {"id": product_id, "quantity": 1}
    if not quantity.isdigit():
        raise click.BadParameter(f"{value!r}: expected PRODUCT_ID or PRODUCT_ID:QUANTITY")
    return {"id": product_id, "quantity": int(quantity)}


@main.command()
@click.argument("reference_id")
@click.option(
    "--item",
    "items",
    multiple=True,
    required=True,
    metavar="PRODUCT_ID[:QUANTITY]",
    help="A product to buy, with its quantity (1 if omitted). Repeat for several products.",
)
def place(reference_id: str, items: tuple[str, ...]) -> None:
    """Record an order under REFERENCE_ID and enqueue it, as checkout code does."""
    from tasks.api import InvalidOrderError, ReferenceConflictError, submit_order  # noqa: PLC0415

    try:
        status = submit_order(reference_id, [_parse_item(item) for item in items])
    except (InvalidOrderError, ReferenceConflictError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    verb = "queued" if status.created else "already exists"
    click.echo(f"order {status.reference_id} {verb}: {status.state}")


@main.command()
@click.argument("reference_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record and timeline as JSON.")
def show(reference_id: str, as_json: bool) -> None:
    """Show an order's state and timeline. Keys are never shown."""
    from tasks.runtime import runtime  # noqa: PLC0415

    ledger = runtime().ledger
    record = ledger.get(reference_id)
    if record is None:
        raise click.ClickException(f"order {reference_id!r} not found")
    timeline = ledger.timeline(reference_id)
    if as_json:
        fields = {name: getattr(record, name) for name in record.__dataclass_fields__}
        fields["items"] = [item.to_json() for item in record.items]
        fields["delivered_sinks"] = sorted(record.delivered_sinks)
        click.echo(json.dumps({"order": fields, "timeline": timeline}, default=str, indent=2))
        return

    click.echo(f"order {record.reference_id}: {record.state.value}")
    for name in ("outcome", "erysta_order_id", "erysta_status", "message", "total_debit"):
        value = getattr(record, name)
        if value:
            click.echo(f"  {name}: {getattr(value, 'value', value)}")
    click.echo("  items: " + ", ".join(f"{i.product_id} x{i.quantity}" for i in record.items))
    click.echo("timeline:")
    for entry in timeline:
        click.echo("  " + _format_event(entry))


def _format_event(entry: dict[str, Any]) -> str:
    at = datetime.fromtimestamp(float(entry.pop("at")), UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    event = entry.pop("event")
    entry.pop("expected", None)
    details = " ".join(f"{key}={value}" for key, value in entry.items() if value is not None)
    return f"{at}  {event:<16} {details}"


@main.command(name="list")
@click.option(
    "--state",
    type=click.Choice([state.value for state in OrderState], case_sensitive=False),
    metavar="STATE",
    help="Only orders in this state.",
)
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Only orders whose last change is at least this many seconds old.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Maximum number of orders listed.",
)
def list_orders(state: str | None, older_than: float, limit: int) -> None:
    """List recent orders, newest first, with their state, age and time since last change."""
    from tasks.runtime import runtime  # noqa: PLC0415

    rt = runtime()
    now = rt.clock()
    listed = 0
    for reference_id in rt.ledger.reference_ids(limit=10_000):
        record = rt.ledger.get(reference_id)
        if record is None or (state and record.state.value != state.upper()):
            continue
        idle_s = now - record.updated_at
        if idle_s < older_than:
            continue
        age_s = now - record.created_at
        click.echo(
            f"{record.reference_id:<40} {record.state.value:<20} "
            f"age {age_s:>8.0f} s  idle {idle_s:>8.0f} s"
        )
        listed += 1
        if listed >= limit:
            break
    if listed == 0:
        click.echo("no orders match")


def _operator_name() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


_operator_option = click.option(
    "--operator",
    default=_operator_name,
    show_default="$USER",
    help="Who takes the action; written to the order's timeline.",
)


def _run_operation(action: Callable[[], OrderStatus]) -> None:
    from tasks.operations import OperatorError  # noqa: PLC0415

    try:
        status = action()
    except (OperatorError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"order {status.reference_id}: {status.state}")


@main.command()
@click.argument("reference_id")
@click.argument("erysta_order_id", required=False)
@click.option("--note", default="", help="Why, for the timeline.")
@_operator_option
def attach(reference_id: str, erysta_order_id: str | None, note: str, operator: str) -> None:
    """Record that Erysta has the order as ERYSTA_ORDER_ID, and resume polling it.

    Use it for an UNKNOWN_OUTCOME order that you found in Erysta's dashboard, or without
    ERYSTA_ORDER_ID to resume polling an order that passed its polling deadline.
    """
    from tasks.operations import attach_order  # noqa: PLC0415

    _run_operation(
        lambda: attach_order(reference_id, erysta_order_id, operator=operator, note=note)
    )


@main.command(name="confirm-not-placed")
@click.argument("reference_id")
@click.option("--note", default="", help="Why, for the timeline.")
@_operator_option
def confirm_not_placed_command(reference_id: str, note: str, operator: str) -> None:
    """Record that Erysta has no order for REFERENCE_ID, and place it again."""
    from tasks.operations import confirm_not_placed  # noqa: PLC0415

    _run_operation(lambda: confirm_not_placed(reference_id, operator=operator, note=note))


@main.command()
@click.argument("reference_id")
@click.option("--note", required=True, help="Why; the shop receives it as the message.")
@_operator_option
def cancel(reference_id: str, note: str, operator: str) -> None:
    """Give up on an order waiting for an operator, and tell the shop."""
    from tasks.operations import cancel_order  # noqa: PLC0415

    _run_operation(lambda: cancel_order(reference_id, operator=operator, note=note))


@main.command()
@click.argument("reference_id")
@click.option("--note", default="", help="Why, for the timeline.")
@_operator_option
def redeliver(reference_id: str, note: str, operator: str) -> None:
    """Send a finished order's outcome to the shop again, with the same webhook id."""
    from tasks.operations import redeliver_order  # noqa: PLC0415

    _run_operation(lambda: redeliver_order(reference_id, operator=operator, note=note))


@main.command(name="rotate-vault")
def rotate_vault() -> None:
    """Re-encrypt every stored key with the newest key in VAULT_KEYS.

    Put the new key first in VAULT_KEYS and keep the old ones, run this, then remove
    the old keys.
    """
    from fulfillment.vault import VaultError  # noqa: PLC0415
    from tasks.runtime import runtime  # noqa: PLC0415

    try:
        count = runtime().vault.rotate()
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"re-encrypted the keys of {count} orders with the newest key")


@main.command(name="new-vault-key")
def new_vault_key_command() -> None:
    """Print a new encryption key for VAULT_KEYS."""
    from fulfillment.vault import new_vault_key  # noqa: PLC0415

    click.echo(new_vault_key())


@main.command(name="new-webhook-secret")
def new_webhook_secret() -> None:
    """Print a new whsec_ secret for WEBHOOK_SECRET."""
    from fulfillment.signing import generate_secret  # noqa: PLC0415

    click.echo(generate_secret())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--simulator-port", default=8080, show_default=True, help="Port of the simulator.")
@click.option("--shop-port", default=8081, show_default=True, help="Port of the demo shop.")
@click.option(
    "--api-key",
    envvar="SANDBOX_API_KEY",
    default="sandbox-key",
    show_default=True,
    help="API key the simulator accepts (env SANDBOX_API_KEY).",
)
@click.option(
    "--webhook-secret",
    envvar="WEBHOOK_SECRET",
    help="whsec_ secret the demo shop verifies (env WEBHOOK_SECRET); a new one if unset.",
)
@click.option("--no-shop", is_flag=True, help="Run only the simulator.")
def sandbox(
    host: str,
    simulator_port: int,
    shop_port: int,
    api_key: str,
    webhook_secret: str | None,
    no_shop: bool,
) -> None:
    """Run the Erysta simulator and the demo shop until interrupted."""
    from fulfillment.signing import generate_secret  # noqa: PLC0415
    from sandbox.run import run_sandbox  # noqa: PLC0415

    if not no_shop and not webhook_secret:
        webhook_secret = generate_secret()
        click.echo(f"No WEBHOOK_SECRET given; the demo shop verifies with {webhook_secret}")
    run_sandbox(
        host=host,
        simulator_port=simulator_port,
        shop_port=None if no_shop else shop_port,
        api_key=api_key,
        webhook_secret=webhook_secret,
    )


@main.command()
@click.option(
    "--keep-running",
    is_flag=True,
    help="Keep the stack up after the summary, for Flower, until Ctrl-C.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for logs and Redis data (default: a new temporary folder).",
)
@click.option(
    "--poll-interval",
    default=1.0,
    show_default=True,
    help="Seconds between polls of one order; production uses 30.",
)
@click.option("--flower-port", default=5555, show_default=True, help="Port of Flower.")
def demo(keep_running: bool, workdir: Path | None, poll_interval: float, flower_port: int) -> None:
    """Run the whole pipeline locally against the simulator and print each order's outcome."""
    from sandbox.demo import run_demo  # noqa: PLC0415

    sys.exit(
        run_demo(
            keep_running=keep_running,
            workdir=workdir,
            poll_interval_s=poll_interval,
            flower_port=flower_port,
        )
    )


@main.command()
@click.option("--orders", default=300, show_default=True, help="Orders to submit.")
@click.option("--workers", default=3, show_default=True, help="Worker processes to run.")
@click.option("--rate", default=2.0, show_default=True, help="Orders submitted per second.")
@click.option(
    "--chaos-interval",
    default=20.0,
    show_default=True,
    help="Mean seconds between two crashes (a worker or Redis killed).",
)
@click.option("--seed", default=1, show_default=True, help="Seed of every random choice.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs/soak-report.md"),
    show_default=True,
    help="Markdown file the report is written to.",
)
def soak(
    orders: int, workers: int, rate: float, chaos_interval: float, seed: int, report: Path
) -> None:
    """Run hundreds of orders through random faults and crashes, and write a report."""
    from sandbox.soak import new_soak_folder, run_soak  # noqa: PLC0415

    folder = new_soak_folder()
    click.echo(f"Soaking {orders} orders with {workers} workers; logs in {folder}")
    result = run_soak(
        orders=orders,
        workers=workers,
        rate_per_s=rate,
        chaos_interval_s=chaos_interval,
        seed=seed,
        report=report,
        folder=folder,
    )
    click.echo(f"Report written to {report}")
    failures = len(result.duplicates) + len(result.lost) + len(result.double_deliveries)
    sys.exit(1 if failures else 0)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def flower(celery_args: tuple[str, ...]) -> None:
    """Start Flower; it refuses to start without a login set in FLOWER_BASIC_AUTH.

    Arguments after the command go to Flower, e.g. `--address=127.0.0.1 --port=5555`.
    """
    from config import load_settings  # noqa: PLC0415

    if load_settings().flower_basic_auth is None:
        raise click.ClickException(
            "FLOWER_BASIC_AUTH is missing: Flower shows every order, so it needs a login; "
            "set FLOWER_BASIC_AUTH=user:password"
        )
    command = [sys.executable, "-m", "celery", "-A", "workers.app", "flower", *celery_args]
    os.execv(sys.executable, command)  # noqa: S606 - replaces this process with Flower


if __name__ == "__main__":
    main()
