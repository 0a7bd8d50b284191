"""Running on a device: SIGTERM lets the requests in flight finish, then the server exits 0; one log line per
request at INFO, never a request body."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from .conftest import start_server

LOG_LINE = re.compile(r'^m2v-edge: INFO: 127\.0\.0\.1:\d+ "(GET|POST) (/\S*)" (\d{3}) \d+\.\d ms$')
MARKER = "confidential-visitor-question"


def read_reply(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 reply with a Content-Length (the server closes after it)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def wait_in_flight(url: str, count: int, timeout: float = 120.0) -> None:
    """Poll /health until `count` requests are in flight (the poll itself is one of them)."""
    deadline = time.monotonic() + timeout
    while requests.get(f"{url}/health", timeout=60).json()["in_flight"] != count:
        assert time.monotonic() < deadline, f"never saw {count} requests in flight"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_finishes_the_request_in_flight_then_exits_0(potion_bundle: Path, embedder, sig: int) -> None:
    server, url = start_server(potion_bundle)
    try:
        body = json.dumps({"inputs": ["a request that was in flight", MARKER]}).encode()
        head = f"POST /embed HTTP/1.1\r\nHost: kiosk\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
            sock.sendall(head.encode() + b"\r\n\r\n" + body[:10])  # the server has the request, not yet its body
            wait_in_flight(url, 2)
            server.proc.send_signal(sig)
            with pytest.raises(requests.ConnectionError):  # no new connections once the stop has begun
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    requests.get(f"{url}/health", timeout=5)
            sock.sendall(body[10:])
            status, reply = read_reply(sock)
        assert status == 200
        vectors = np.asarray(json.loads(reply), dtype=np.float64)
        assert np.array_equal(vectors, embedder.encode(["a request that was in flight", MARKER]).astype(np.float64))
        assert server.wait_exit() == 0
    finally:
        server.kill()
    assert server.lines[-1] == "m2v-edge: INFO: stopped"
    assert any(LOG_LINE.match(line) and '"POST /embed" 200' in line for line in server.lines), server.lines


def test_one_log_line_per_request_and_no_bodies(potion_bundle: Path, tmp_path: Path) -> None:
    server, url = start_server(potion_bundle, "--outbox", str(tmp_path / "kiosk.outbox"))
    sent = [
        ("POST", "/v1/embeddings", {"input": [MARKER, "second text"]}, 200),
        ("POST", "/embed", {"inputs": MARKER}, 200),
        ("POST", "/documents", {"id": "faq-1", "text": f"{MARKER} opening hours", "metadata": {"who": MARKER}}, 200),
        ("POST", "/search", {"query": MARKER}, 200),
        ("POST", "/embed", {"inputs": 3, "note": MARKER}, 422),
        ("GET", "/info", None, 200),
        ("GET", "/", None, 200),
        ("GET", "/nowhere", None, 404),
    ]
    try:
        for method, path, body, status in sent:
            assert requests.request(method, url + path, json=body, timeout=60).status_code == status
    finally:
        assert server.stop() == 0
    logged = [LOG_LINE.match(line) for line in server.lines if " INFO: 127.0.0.1:" in line]
    assert all(logged), server.lines
    assert [(m.group(1), m.group(2), int(m.group(3))) for m in logged] == [(m, p, s) for m, p, _, s in sent]
    assert not [line for line in server.lines if MARKER in line]
