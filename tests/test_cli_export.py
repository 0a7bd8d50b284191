"""`m2v-edge export` and the Hub token: `--token-file`, else `$HF_TOKEN`, as a local stand-in for the Hub sees them.

The stand-in answers every request with 401, so each export fails after its first authenticated request; what matters
is the `Authorization` header that request carried.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str | None]

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path.startswith("/api/models/"):  # huggingface_hub may ask other things first
            self.seen.append(self.headers.get("Authorization"))
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "Invalid credentials"}')

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[str, list[str | None]]]:
    """The stand-in Hub's URL and the Authorization headers of the model requests it received."""
    seen: list[str | None] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        thread.join()


def export(hub_url: str, home: Path, *args: str, hf_token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub_url, HF_HOME=str(home / "hf-home"))
    if hf_token is not None:
        env["HF_TOKEN"] = hf_token
    argv = [sys.executable, "-m", "m2v_edge.cli", "export", "org/private-model", "-o", str(home / "out"), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("file_token", "env_token", "sent"),
    [("from-the-file", None, "Bearer from-the-file"), ("from-the-file", "from-env", "Bearer from-the-file"),
     (None, "from-env", "Bearer from-env"), (None, None, None)],
    ids=["file", "file-wins-over-env", "env", "none"],
)
def test_the_hub_gets_the_token_file_else_hf_token(
    hub: tuple[str, list[str | None]], tmp_path: Path, file_token: str | None, env_token: str | None, sent: str | None
) -> None:
    url, seen = hub
    args: list[str] = []
    if file_token is not None:
        token_file = tmp_path / "hf-token"
        token_file.write_text(f"{file_token}\n", encoding="utf-8")  # a trailing newline, as editors leave it
        args = ["--token-file", str(token_file)]
    result = export(url, tmp_path, *args, hf_token=env_token)
    assert result.returncode == 2 and "org/private-model" in result.stderr, result.stderr
    assert seen and set(seen) == {sent}
    assert not (tmp_path / "out").exists()
