"""The load behind `python -m bench.serve`: a real `m2v-edge serve` process, wrk as its clients, and the same calls
made to `EdgeEmbedder` in-process by as many threads.

wrk (Debian's `wrk`, written in C) keeps N connections busy, each sending its next request as soon as the reply
arrives (a closed loop, as N kiosk app instances would); its Lua `done` hook prints the exact percentiles. Requests
cycle through distinct Debian texts, so no cache sees the same text twice in a row.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

READY = re.compile(r" on (http://\S+)/")
WRK_RESULT = "WRK_RESULT "
LUA = """
local bodies = {%(bodies)s}
local next_body = 0
request = function()
  next_body = next_body %% #bodies + 1
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"}, bodies[next_body])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('%(marker)s{"requests": %%d, "microseconds": %%d, "bad_status": %%d, "socket_errors": %%d, '
    .. '"p50_us": %%d, "p99_us": %%d}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Figures:
    """One measurement: requests (calls) per second, texts per second, latency percentiles in milliseconds."""

    requests_per_s: float
    texts_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


class Server:
    """A server started as `python -m MODULE ARGS` that prints ``... on http://host:port/`` on stderr once it listens
    (`m2v-edge serve --port 0` does), its log in a file; stopped with SIGTERM."""

    def __init__(self, module: str, *args: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="m2v-edge-serve-", suffix=".log", delete=False)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("M2V_EDGE_SERVE_TOKEN", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.log, env=env,
        )
        self.url = self._wait_ready(timeout=300)

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = Path(self.log.name).read_text(encoding="utf-8", errors="replace")
            if match := READY.search(text):
                return match.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args} exited with {self.proc.returncode}: {text}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.proc.args} did not start within {timeout}s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self.log.close()
        os.unlink(self.log.name)


def require_wrk() -> str:
    """wrk's path; SystemExit naming the Debian package when it is missing."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("python -m bench.serve needs wrk: apt-get install wrk (or make bench-serve)")
    return found


def wrk(url: str, path: str, bodies: list[bytes], texts_per_request: int, clients: int, seconds: int) -> Figures:
    """`clients` connections posting `bodies` in turn to `url + path` for `seconds` (whole seconds: wrk's unit)."""
    lua_bodies = ",".join("[==[" + body.decode() + "]==]" for body in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, encoding="utf-8") as script:
        script.write(LUA % {"bodies": lua_bodies, "path": path, "marker": WRK_RESULT})
    try:
        done = subprocess.run(
            [require_wrk(), "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "-s", script.name, url],
            capture_output=True, text=True, timeout=seconds + 120, check=True,
        )
    finally:
        os.unlink(script.name)
    line = next(line for line in done.stdout.splitlines() if line.startswith(WRK_RESULT))
    result = json.loads(line[len(WRK_RESULT):])
    rate = result["requests"] / (result["microseconds"] / 1e6)
    return Figures(rate, rate * texts_per_request, result["p50_us"] / 1000, result["p99_us"] / 1000,
                   result["bad_status"] + result["socket_errors"])


def in_process(embedder: object, calls: list[list[str] | str], threads: int, seconds: float) -> Figures:
    """`threads` threads calling `embedder.encode` on `calls` in turn (a str: one text, 1-D) for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start_gate = threading.Barrier(threads + 1)
    stop = threading.Event()

    def caller(slot: int) -> None:
        mine = latencies[slot]
        index = slot
        start_gate.wait()
        while not stop.is_set():
            begin = time.perf_counter()
            embedder.encode(calls[index % len(calls)])  # type: ignore[attr-defined]
            mine.append(time.perf_counter() - begin)
            index += threads

    workers = [threading.Thread(target=caller, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    start_gate.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    every = np.concatenate([np.asarray(own) for own in latencies])
    per_call = 1 if isinstance(calls[0], str) else len(calls[0])
    rate = len(every) / elapsed
    p50, p99 = np.percentile(every, [50, 99]) * 1000
    return Figures(rate, rate * per_call, float(p50), float(p99))
