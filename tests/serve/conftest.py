"""Fixtures for the serve tests: the real `m2v-edge serve` command in a subprocess, on 127.0.0.1 and a free port.

The server is started with ``--port 0`` and its start-up line (``... on http://127.0.0.1:PORT/``) says which port
the system gave it: no port is guessed, and readiness is that line, not a sleep.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

VARIANT = "int8"
PROFILE = "generic"
"""The server and the in-process embedder the tests compare it with use the same variant and profile."""
READY_TIMEOUT = 180.0
"""Seconds a server may take to load the model and listen, on a loaded machine."""
READY_LINE = re.compile(r" on (http://\S+/)")


class ServeProcess:
    """`m2v-edge serve` running in a subprocess (this interpreter's, or the `m2v-edge` program given); its stderr
    lines are collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, program: str | None = None) -> None:
        command = [program] if program is not None else [sys.executable, "-m", "m2v_edge.cli"]
        self.proc = subprocess.Popen(
            [*command, "serve", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=env if env is not None else serve_env(),
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)
        self._new.put(None)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> str:
        """The server's URL, once its start-up line is out; fails if it exits or says nothing in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"serve did not start within {timeout}s: {self.lines}") from None
            if line is None:
                raise AssertionError(f"serve exited with {self.proc.wait()} before listening: {self.lines}")
            if match := READY_LINE.search(line):
                return match.group(1)

    def wait_exit(self, timeout: float = 60.0) -> int:
        """The exit code, and every stderr line read (the reader has reached the end of the stream)."""
        code = self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while self._new.get(timeout=max(0.0, deadline - time.monotonic())) is not None:
            pass
        return code

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def serve_env(**extra: str) -> dict[str, str]:
    """The environment of a server: this one, without a serve token unless given, unbuffered output."""
    env = {key: value for key, value in os.environ.items() if key != "M2V_EDGE_SERVE_TOKEN"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_server(bundle: Path, *args: str, env: dict[str, str] | None = None) -> tuple[ServeProcess, str]:
    """A started server of `bundle` (int8, generic profile, a free port) and its URL without the final slash."""
    server = ServeProcess(str(bundle), "--variant", VARIANT, "--profile", PROFILE, "--port", "0", *args, env=env)
    try:
        return server, server.wait_ready().rstrip("/")
    except BaseException:
        server.kill()
        raise


@pytest.fixture(scope="session")
def embedder(potion_bundle: Path):  # noqa: ANN201 - EdgeEmbedder
    """The in-process embedder the server's vectors must equal."""
    from m2v_edge.runtime import EdgeEmbedder

    return EdgeEmbedder(potion_bundle, variant=VARIANT, profile=PROFILE)


@pytest.fixture(scope="module")
def server_url(potion_bundle: Path) -> Iterator[str]:
    """A server without an outbox, shared by a test module."""
    server, url = start_server(potion_bundle)
    yield url
    assert server.stop() == 0, server.lines
