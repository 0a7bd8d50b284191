"""Every bad request we could think of, against a real server with small limits and an outbox: each gets the status
the issue asks for and a JSON body naming the field, none leaks a traceback, and the server keeps answering."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import requests

from .conftest import ServeProcess, start_server

LIMITS = ("--max-body-bytes", "4096", "--max-texts", "8", "--max-text-chars", "100")


class Bad(NamedTuple):
    method: str
    path: str
    body: bytes | None
    status: int
    field: str | None


def js(value: object) -> bytes:
    return json.dumps(value).encode()


BAD_REQUESTS = {
    # the body is not JSON: 400
    "not JSON": Bad("POST", "/v1/embeddings", b"{bad", 400, "body"),
    "empty body": Bad("POST", "/v1/embeddings", b"", 400, "body"),
    "invalid UTF-8": Bad("POST", "/embed", b'{"inputs": "\xff\xfe"}', 400, "body"),
    "lone surrogate escape": Bad("POST", "/embed", b'{"inputs": "\\ud800"}', 400, "body"),
    "NaN": Bad("POST", "/embed", b'{"inputs": NaN}', 400, "body"),
    "nesting 2000 deep": Bad("POST", "/embed", b"[" * 2000 + b"]" * 2000, 400, "body"),
    # wrong types, missing fields, values out of range: 422
    "body is a list": Bad("POST", "/v1/embeddings", js([1, 2]), 422, "body"),
    "input missing": Bad("POST", "/v1/embeddings", js({"model": "m"}), 422, "input"),
    "input a number": Bad("POST", "/v1/embeddings", js({"input": 5}), 422, "input"),
    "input empty list": Bad("POST", "/v1/embeddings", js({"input": []}), 422, "input"),
    "input token ids": Bad("POST", "/v1/embeddings", js({"input": [1, 2]}), 422, "input[0]"),
    "input holds null": Bad("POST", "/v1/embeddings", js({"input": ["ok", None]}), 422, "input[1]"),
    "encoding_format int8": Bad("POST", "/v1/embeddings", js({"input": "x", "encoding_format": "int8"}), 422,
                                "encoding_format"),
    "model a number": Bad("POST", "/v1/embeddings", js({"input": "x", "model": 3}), 422, "model"),
    "dimensions 64": Bad("POST", "/v1/embeddings", js({"input": "x", "dimensions": 64}), 422, "dimensions"),
    "inputs an object": Bad("POST", "/embed", js({"inputs": {"a": 1}}), 422, "inputs"),
    "normalize a string": Bad("POST", "/embed", js({"inputs": "x", "normalize": "yes"}), 422, "normalize"),
    "normalize false": Bad("POST", "/embed", js({"inputs": "x", "normalize": False}), 422, "normalize"),
    "query missing": Bad("POST", "/search", js({"k": 3}), 422, "query"),
    "query a list": Bad("POST", "/search", js({"query": ["a"]}), 422, "query"),
    "k zero": Bad("POST", "/search", js({"query": "a", "k": 0}), 422, "k"),
    "k a string": Bad("POST", "/search", js({"query": "a", "k": "5"}), 422, "k"),
    "k true": Bad("POST", "/search", js({"query": "a", "k": True}), 422, "k"),
    "k 1.5": Bad("POST", "/search", js({"query": "a", "k": 1.5}), 422, "k"),
    "k 10**30": Bad("POST", "/search", b'{"query": "a", "k": 1000000000000000000000000000000}', 422, "k"),
    "kiosk a number": Bad("POST", "/search", js({"query": "a", "kiosk": 7}), 422, "kiosk"),
    "query of emoji only (zero vector)": Bad("POST", "/search", js({"query": "🙂"}), 422, "query"),
    "documents empty list": Bad("POST", "/documents", js([]), 422, "body"),
    "documents a string": Bad("POST", "/documents", js("text"), 422, "body"),
    "document id empty": Bad("POST", "/documents", js([{"id": "", "text": "x"}]), 422, "body"),
    "document text missing": Bad("POST", "/documents", js([{"id": "a"}]), 422, "body"),
    "document text a number": Bad("POST", "/documents", js({"id": "a", "text": 5}), 422, "body"),
    "document id 600 bytes": Bad("POST", "/documents", js([{"id": "a" * 600, "text": "x"}]), 422, "body"),
    "document id with a newline": Bad("POST", "/documents", js([{"id": "a\nb", "text": "x"}]), 422, "body"),
    "document metadata a list": Bad("POST", "/documents", js([{"id": "a", "text": "x", "metadata": [1]}]), 422,
                                    "body"),
    # over the limits: 413
    "9 texts (limit 8)": Bad("POST", "/v1/embeddings", js({"input": ["a"] * 9}), 413, "input"),
    "text of 101 characters (limit 100)": Bad("POST", "/embed", js({"inputs": ["ok", "a" * 101]}), 413, "inputs[1]"),
    "query of 101 characters": Bad("POST", "/search", js({"query": "a" * 101}), 413, "query"),
    "9 documents": Bad("POST", "/documents", js([{"id": str(i), "text": "x"} for i in range(9)]), 413, "body"),
    "document of 101 characters": Bad("POST", "/documents", js({"id": "a", "text": "a" * 101}), 413, "[0].text"),
    "body of 5,000 bytes (limit 4,096)": Bad("POST", "/embed", js({"inputs": "a" * 5000}), 413, "body"),
    # routes and methods
    "unknown route": Bad("GET", "/nope", None, 404, "path"),
    "GET /embed": Bad("GET", "/embed", None, 405, "method"),
    "DELETE /v1/embeddings": Bad("DELETE", "/v1/embeddings", None, 405, "method"),
    "POST /health": Bad("POST", "/health", b"{}", 405, "method"),
    "PUT /documents": Bad("PUT", "/documents", b"[]", 405, "method"),
}


@pytest.fixture(scope="module")
def small_server(potion_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, str]]:
    outbox = tmp_path_factory.mktemp("bad") / "kiosk.outbox"
    server, url = start_server(potion_bundle, "--outbox", str(outbox), *LIMITS)
    yield server, url
    assert server.stop() == 0, server.lines


def error_field(path: str, body: dict) -> str | None:
    """The field an error body names, in the shape of the route's API."""
    if path.startswith("/v1/"):
        assert body["message"] == body["error"]["message"] and body["error"]["code"] == body["error"].get("code")
        return body["error"]["param"]
    assert isinstance(body["error"], str) and body["error_type"]
    return body["field"]


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_request(small_server: tuple[ServeProcess, str], name: str) -> None:
    bad = BAD_REQUESTS[name]
    _, url = small_server
    reply = requests.request(bad.method, url + bad.path, data=bad.body, timeout=60)
    assert reply.status_code == bad.status, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert error_field(bad.path, reply.json()) == bad.field
    assert "Traceback" not in reply.text and 'File "' not in reply.text


def test_a_body_over_the_limit_without_a_length_is_cut_off_while_it_streams(small_server) -> None:
    _, url = small_server
    chunks = (b'{"inputs": "' + b"a" * 1000 for _ in range(1000))  # 1 MB, chunked, no Content-Length
    reply = requests.post(f"{url}/embed", data=chunks, timeout=60)
    assert reply.status_code == 413 and reply.json()["field"] == "body"


def test_a_lying_content_length_is_refused_before_the_body_is_read(small_server) -> None:
    _, url = small_server
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{")
        head = sock.recv(65536).decode()
    assert head.startswith("HTTP/1.1 413 ")


@pytest.mark.parametrize("garbage", [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                                     b"\x00\x01\x02\r\n\r\n"])
def test_malformed_http_gets_400_from_uvicorn_and_the_server_carries_on(small_server, garbage: bytes) -> None:
    """Not a request the application sees: uvicorn's parser refuses it (a plain-text 400) and closes."""
    _, url = small_server
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(garbage)
        head = sock.recv(65536).decode("latin-1")
    assert head.startswith("HTTP/1.1 400 "), head
    assert requests.get(f"{url}/health", timeout=60).status_code == 200


def test_a_client_that_hangs_up_mid_body_or_mid_request_stops_nothing(small_server) -> None:
    _, url = small_server
    port = int(url.rsplit(":", 1)[1])
    for partial in (b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inputs\":",
                    b"POST /v1/embeddings HTTP/1.1\r\nHo"):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(partial)
    reply = requests.post(f"{url}/embed", json={"inputs": "still here"}, timeout=60)
    assert reply.status_code == 200 and len(reply.json()[0]) == 256


def test_after_every_bad_request_the_server_still_answers_and_logged_no_traceback(small_server) -> None:
    server, url = small_server
    assert requests.get(f"{url}/health", timeout=60).json()["status"] == "ok"
    assert requests.post(f"{url}/search", json={"query": "a text editor"}, timeout=60).status_code == 200
    assert server.proc.poll() is None
    assert not [line for line in server.lines if "Traceback" in line], server.lines
