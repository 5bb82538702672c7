"""The compose file and the image start only commands that exist."""

from __future__ import annotations

import importlib
import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from celery import Celery
from celery.bin.celery import celery as celery_command

from config.celery import ALL_QUEUES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
APP_SERVICES = {
    name: service for name, service in COMPOSE["services"].items() if "build" in service
}


def dockerfile_command() -> list[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r"^CMD (\[.*\])\s*$", text, re.MULTILINE)
    assert match is not None
    command: list[str] = yaml.safe_load(match.group(1))
    return command


COMMANDS = {f"compose:{name}": service["command"] for name, service in APP_SERVICES.items()}
COMMANDS["Dockerfile"] = dockerfile_command()


def check_celery(arguments: list[str]) -> None:
    assert arguments[0] == "-A"
    module = importlib.import_module(arguments[1])
    assert isinstance(module.app, Celery)
    subcommand = arguments[2]
    plugins = {entry.name for entry in entry_points(group="celery.commands")}
    assert subcommand in set(celery_command.commands) | plugins
    if subcommand == "worker":
        queues = arguments[arguments.index("-Q") + 1].split(",")
        assert sorted(queues) == sorted(ALL_QUEUES)


def check_console_script(name: str, arguments: list[str]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    module_name, _, attribute = scripts[name].partition(":")
    group: Any = getattr(importlib.import_module(module_name), attribute)
    assert isinstance(group, click.Group)
    command = group.commands[arguments[0]]
    # Parsing the options proves each one exists and takes the value given.
    command.make_context(arguments[0], list(arguments[1:]))


@pytest.mark.parametrize("where", sorted(COMMANDS))
def test_command_exists(where: str) -> None:
    executable, *arguments = COMMANDS[where]

    if executable == "celery":
        check_celery(arguments)
    else:
        check_console_script(executable, arguments)


def test_worker_and_beat_and_flower_defined() -> None:
    assert {"worker", "beat", "flower", "redis", "sandbox"} <= set(COMPOSE["services"])


def test_sandbox_service_in_profile() -> None:
    assert COMPOSE["services"]["sandbox"]["profiles"] == ["sandbox"]


def test_worker_grace_exceeds_soft_shutdown() -> None:
    from config.celery import SOFT_SHUTDOWN_TIMEOUT_S  # noqa: PLC0415

    grace = COMPOSE["services"]["worker"]["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) > SOFT_SHUTDOWN_TIMEOUT_S


def test_redis_keeps_an_append_only_file() -> None:
    command = " ".join(COMPOSE["services"]["redis"]["command"])

    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "requirepass" in command


def test_flower_requires_login() -> None:
    environment = COMPOSE["services"]["flower"]["environment"]

    assert "FLOWER_BASIC_AUTH" in environment
    assert ":?" in environment["FLOWER_BASIC_AUTH"]


def test_every_setting_reaches_the_workers() -> None:
    from config.settings import Settings  # noqa: PLC0415

    # REDIS_URL stands for the three Redis URLs; Flower's login is Flower's alone.
    not_for_workers = {"BROKER_URL", "RESULT_BACKEND_URL", "LEDGER_REDIS_URL", "FLOWER_BASIC_AUTH"}
    expected = {name.upper() for name in Settings.__dataclass_fields__} - not_for_workers
    environment = COMPOSE["services"]["worker"]["environment"]

    assert set(environment) == expected | {"REDIS_URL"}


def test_flower_gets_no_supplier_or_vault_secrets() -> None:
    environment = COMPOSE["services"]["flower"]["environment"]

    assert "ERYSTA_API_KEY" not in environment
    assert "VAULT_KEYS" not in environment
    assert "WEBHOOK_SECRET" not in environment
