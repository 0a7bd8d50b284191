"""Real Milvus servers for the sync tests, started and stopped by the tests themselves, on 127.0.0.1 only.

- `LiteServer`: ``milvus-lite server --data-dir D --host 127.0.0.1 --port P`` (the pure-Python Milvus Lite
  over gRPC), ready in about a second.
- `StandaloneServer`: ``milvus-server`` from the PyPI package ``milvus`` (Milvus 2.3.5 standalone with embedded
  etcd and rocksmq), ready in about 7 s. It ignores SIGTERM, so every server runs in its own session (setsid) and
  is stopped by SIGKILL to its whole process group. Its internal components are told to advertise 127.0.0.1, and
  its session TTL is shortened so that a restart after a kill does not wait 30+ s for stale sessions to expire.

Each server keeps its data folder across `kill()` / `start()`, which is how the tests restart one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
STANDALONE_SESSION_TTL = 5
"""Seconds; Milvus's default (30) makes a restart after SIGKILL wait about a minute."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


class ServerProcess:
    """A server command run in its own process group, with a readiness check and a hard stop."""

    name = "server"

    def __init__(self, data_dir: Path, port: int, *, ready_timeout: float) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.starts = 0

    @property
    def uri(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def after_kill(self, pids: list[int]) -> None:
        """Clean up what the killed processes `pids` left outside the data folder (nothing, by default)."""

    def is_ready(self) -> bool:
        raise NotImplementedError

    def start(self, *, wait: bool = True) -> None:
        """Start (or restart) the server on the same port and data folder; wait until it answers."""
        become_subreaper()
        if self.proc is not None:
            raise RuntimeError(f"{self.name} is already running")
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already taken; cannot start {self.name}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {self.starts + 1}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.data_dir.parent,
            )
        self.starts += 1
        if wait:
            self.wait_ready()

    def wait_ready(self) -> float:
        """Block until the server answers; returns the seconds waited. Raises (and kills it) on timeout."""
        assert self.proc is not None
        start = time.monotonic()
        while time.monotonic() - start < self.ready_timeout:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"{self.name} exited with {code} while starting; see {self.log_path}")
            if self.is_ready():
                return time.monotonic() - start
            time.sleep(0.25)
        self.kill()
        raise TimeoutError(f"{self.name} not ready after {self.ready_timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole process group (the server and every child) and reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        pids = group_members(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            raise RuntimeError(f"{self.name} (pid {proc.pid}) did not die after SIGKILL") from None
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids:  # grandchildren orphaned by the kill were re-parented to us (subreaper): reap them
            if pid != proc.pid:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        self.after_kill(pids)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LiteServer(ServerProcess):
    """``milvus-lite server`` on 127.0.0.1."""

    name = "milvus-lite server"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port or free_port(), ready_timeout=60)

    def command(self) -> list[str]:
        return [str(BIN / "milvus-lite"), "server", "--data-dir", str(self.data_dir), "--host", LOOPBACK,
                "--port", str(self.port)]

    def is_ready(self) -> bool:
        return port_open(self.port) and _answers(self.uri)


class StandaloneServer(ServerProcess):
    """``milvus-server`` (Milvus 2.3.5 standalone) with every component on 127.0.0.1."""

    name = "milvus standalone"
    COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode")

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        # a restart after SIGKILL takes 16-27 s; more than 300 s was seen on a loaded machine
        super().__init__(data_dir, port or free_port(), ready_timeout=900)

    def command(self) -> list[str]:
        cmd = [str(BIN / "milvus-server"), "--data", str(self.data_dir), "--proxy-port", str(self.port)]
        for component in self.COMPONENTS:
            cmd += ["--extra-config", f"{component}.ip={LOOPBACK}"]
        cmd += ["--extra-config", f"common.session.ttl={STANDALONE_SESSION_TTL}"]
        return cmd

    def after_kill(self, pids: list[int]) -> None:
        """Milvus writes ``/tmp/milvus/server_id_<pid>`` (a fixed path); remove those of our processes."""
        for pid in pids:
            Path(f"/tmp/milvus/server_id_{pid}").unlink(missing_ok=True)

    ETCD_PORTS = (2379, 2380)
    """The embedded etcd always takes these."""
    ETCD_WAIT = 900
    """Seconds to wait for another Milvus standalone on this machine (another test run) to free the etcd ports."""

    def start(self, *, wait: bool = True) -> None:
        deadline = time.monotonic() + self.ETCD_WAIT
        while taken := [port for port in self.ETCD_PORTS if port_open(port)]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {taken[0]} is still taken after {self.ETCD_WAIT}s (another etcd or Milvus?); "
                                   f"cannot start {self.name}")
            time.sleep(1)
        super().start(wait=wait)

    def is_ready(self) -> bool:
        return port_open(self.port) and _answers(self.uri)


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux), so that a server's children killed
    along with it do not linger as zombies under init."""
    import ctypes

    pr_set_child_subreaper = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def group_members(pgid: int) -> list[int]:
    """The pids of the processes in process group `pgid` (from /proc)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat_file.parent.name))
    return members


def _answers(uri: str) -> bool:
    """Whether a Milvus at `uri` completes a real request (list_collections)."""
    import logging

    from pymilvus import MilvusClient

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    try:
        client = MilvusClient(uri=uri, timeout=3, dedicated=True)
    except Exception:  # noqa: BLE001 - not up yet
        return False
    try:
        client.list_collections(timeout=3)
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        client.close()
