"""Safe by default: loopback unless told otherwise, a bearer token (never from argv, never logged) for anything
else, and the one-line message that names the `serve` extra when it is missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from m2v_edge.errors import ServeError
from m2v_edge.serve import BearerToken, Limits, ServeSettings, read_serve_token
from m2v_edge.serve.settings import is_loopback

from .conftest import serve_env, start_server

TOKEN = "kiosk-7f3a9c-secret"


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "m2v_edge.cli", "serve", *args], capture_output=True, text=True,
                          timeout=300, env=env or serve_env(), stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "kiosk.local"])
def test_an_address_other_than_loopback_needs_a_token(potion_bundle: Path, host: str) -> None:
    done = run_serve(str(potion_bundle), "--host", host, "--port", "0")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"m2v-edge serve: error: --host {host} lets other machines reach the server, so it needs a bearer token: put "
        "one in $M2V_EDGE_SERVE_TOKEN or in a file given with --token-file (never on the command line)"
    ]


def test_a_port_in_use_is_refused_in_one_line(potion_bundle: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(str(potion_bundle), "--port", str(port))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"m2v-edge serve: error: cannot listen on 127.0.0.1:{port}: Address already "
                                        "in use; is another server using it? choose another --port"]


def test_the_token_is_refused_on_the_command_line_without_being_echoed(potion_bundle: Path) -> None:
    done = run_serve(str(potion_bundle), "--token", TOKEN)
    assert done.returncode == 2 and "never taken on the command line" in done.stderr
    assert TOKEN not in done.stderr + done.stdout


def test_settings_and_loopback() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "10.0.0.1", "kiosk.local", ""))
    ServeSettings(host="0.0.0.0", token=BearerToken(TOKEN))
    with pytest.raises(ServeError, match="needs a bearer token"):
        ServeSettings(host="0.0.0.0")
    with pytest.raises(ServeError, match="is not a TCP port"):
        ServeSettings(port=70_000)
    with pytest.raises(ServeError, match=r"--max-texts \(max_texts\) must be >= 1, got 0"):
        Limits(max_texts=0)


def test_token_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("M2V_EDGE_SERVE_TOKEN", raising=False)
    assert read_serve_token() is None
    env_token = "kiosk-from-the-environment"
    monkeypatch.setenv("M2V_EDGE_SERVE_TOKEN", f"  {env_token}\n")
    assert read_serve_token().accepts(f"Bearer {env_token}".encode())
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\nignored second line\n")
    path.chmod(0o600)
    token = read_serve_token(path)  # the file wins over the environment
    assert token.accepts(f"Bearer {TOKEN}".encode()) and not caplog.records
    assert not token.accepts(f"Bearer {env_token}".encode())
    assert TOKEN not in repr(token) + str(token) + f"{token}"
    for wrong in (None, b"", b"Bearer", f"bearer {TOKEN}".encode(), f"Bearer {TOKEN} ".encode(), TOKEN.encode(),
                  f"Bearer {TOKEN[:-1]}".encode(), f"Basic {TOKEN}".encode()):
        assert not token.accepts(wrong), wrong
    path.chmod(0o644)
    read_serve_token(path)
    assert "readable by other users" in caplog.text and TOKEN not in caplog.text
    path.write_text("\n\n")
    with pytest.raises(ServeError, match=f"token file {path} is empty"):
        read_serve_token(path)
    with pytest.raises(ServeError, match="does not exist"):
        read_serve_token(tmp_path / "missing")
    with pytest.raises(ServeError, match="one word") as refused:
        BearerToken("two words")
    assert "two words" not in str(refused.value)


def test_with_a_token_every_route_but_health_and_the_page_needs_it(potion_bundle: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    server, url = start_server(potion_bundle, "--token-file", str(token_file), "--outbox", str(tmp_path / "o.outbox"))
    try:
        good = {"Authorization": f"Bearer {TOKEN}"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            for method, path, body in (
                ("POST", "/v1/embeddings", {"input": "x"}), ("POST", "/embed", {"inputs": "x"}),
                ("POST", "/", {"inputs": "x"}), ("GET", "/info", None), ("POST", "/search", {"query": "x"}),
                ("POST", "/documents", {"id": "a", "text": "x"}),
            ):
                reply = requests.request(method, url + path, json=body, headers=headers, timeout=60)
                assert reply.status_code == 401 and reply.headers["WWW-Authenticate"] == "Bearer", (method, path)
                assert "Authorization" in reply.text and TOKEN not in reply.text
        assert requests.get(f"{url}/health", timeout=60).status_code == 200
        assert requests.get(f"{url}/", timeout=60).headers["content-type"].startswith("text/html")
        assert requests.post(f"{url}/embed", json={"inputs": "x"}, headers=good, timeout=60).status_code == 200
        assert requests.post(f"{url}/documents", json={"id": "a", "text": "an editor"}, headers=good,
                             timeout=60).json()["written"] == 1
    finally:
        assert server.stop() == 0
    assert len(server.lines) > 20 and not [line for line in server.lines if TOKEN in line]


def test_the_token_from_the_environment(potion_bundle: Path) -> None:
    server, url = start_server(potion_bundle, env=serve_env(M2V_EDGE_SERVE_TOKEN=TOKEN))
    try:
        assert requests.post(f"{url}/embed", json={"inputs": "x"}, timeout=60).status_code == 401
        reply = requests.post(f"{url}/embed", json={"inputs": "x"}, headers={"Authorization": f"Bearer {TOKEN}"},
                              timeout=60)
        assert reply.status_code == 200
    finally:
        assert server.stop() == 0


def test_without_the_serve_extra_one_line_names_it(potion_bundle: Path) -> None:
    """As `pip install m2v-edge` without `[serve]` has it (the clean-venv packaging test checks the real thing)."""
    code = ("import sys\nsys.modules['starlette'] = None  # not installed\nfrom m2v_edge.cli import main\n"
            f"sys.exit(main(['serve', {str(potion_bundle)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "m2v-edge serve: error: m2v-edge serve needs the 'serve' extra: pip install 'm2v-edge[serve]'"
    ]


def test_the_command_line_loads_no_web_stack_until_serve_runs() -> None:
    code = "import json, sys\nimport m2v_edge.cli\nm2v_edge.cli.build_parser()\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert "m2v_edge" in loaded and not loaded & {"starlette", "uvicorn", "anyio", "orjson", "onnxruntime"}
