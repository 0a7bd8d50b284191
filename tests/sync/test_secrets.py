"""The Milvus token stays secret; https targets verify certificates.

The token must never appear in argv, stdout, stderr, log records (any logger, DEBUG level, `-v`), exception
messages, `status` output or the outbox files. `test_sync.test_the_token_is_never_printed_or_logged` covers the
`sync` subprocess; here the other commands, the log records, the files on disk and the command-line mistake.
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from m2v_edge.cli import main
from m2v_edge.errors import MilvusSyncError
from m2v_edge.sync import MilvusCollection, Secret, parse_target

from .conftest import VARIANT, cli_env, run_cli

TOKEN = "tok-8f3a1c9e-SECRET-do-not-print"
DOWN = "http://127.0.0.1:9"  # nothing listens on the discard port


def _outbox_bytes(outbox: Path) -> bytes:
    return b"".join(p.read_bytes() for p in outbox.parent.glob(outbox.name + "*") if p.is_file())


def test_token_is_in_no_output_log_record_or_file(
    outbox5000: Path, lite_server, potion_bundle: Path, collection_name: str, caplog, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("M2V_EDGE_MILVUS_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)  # every logger, pymilvus and grpc included
    outbox = str(outbox5000)
    target = ["--uri", lite_server.uri, "--collection", collection_name]
    failing = ["--max-attempts", "2", "--max-delay", "0.05", "--timeout", "2"]
    assert main(["-v", "sync", "--outbox", outbox, *target, "--batch-size", "2500"]) == 0
    assert main(["-v", "delete", "--outbox", outbox, "doc-1", "doc-2"]) == 0
    assert main(["sync", "--outbox", outbox, "--uri", DOWN, "--collection", "c", *failing]) == 2
    with pytest.raises(MilvusSyncError) as verbose_failure:  # -v re-raises for the traceback
        main(["-v", "sync", "--outbox", outbox, "--uri", DOWN, "--collection", "c", *failing])
    assert main(["-v", "search", "--bundle", str(potion_bundle), "--variant", VARIANT, *target, "text editor"]) == 0
    assert main(["search", "--bundle", str(potion_bundle), "--variant", VARIANT, "--uri", DOWN, "--collection", "c",
                 "--timeout", "2", "text editor"]) == 2
    for args in (["status"], ["status", "--json"]):
        assert main([*args, "--outbox", outbox]) == 0
    out = capsys.readouterr()
    assert "synced 5000 rows" in out.out and "outbox" in out.out and "error" in out.err
    assert caplog.records, "nothing was logged: the check would prove nothing"
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for where, text in (("stdout", out.out), ("stderr", out.err), ("log records", logged),
                        ("exception", repr(verbose_failure.value) + str(verbose_failure.value))):
        assert TOKEN not in text, f"the token leaked into {where}"
    assert TOKEN.encode() not in _outbox_bytes(outbox5000)


def test_status_subprocess_never_shows_the_token(outbox5000: Path) -> None:
    env = cli_env(M2V_EDGE_MILVUS_TOKEN=TOKEN)
    failed = run_cli("-v", "sync", "--outbox", str(outbox5000), "--uri", DOWN, "--collection", "c",
                     "--max-attempts", "1", "--timeout", "2", env=env)
    assert failed.returncode != 0
    for args in (("status",), ("status", "--json"), ("-v", "status")):
        result = run_cli(*args, "--outbox", str(outbox5000), env=env)
        assert result.returncode == 0 and TOKEN not in result.stdout + result.stderr
    assert TOKEN not in failed.stdout + failed.stderr


@pytest.mark.parametrize("form", [["--token", TOKEN], [f"--token={TOKEN}"]])
def test_a_token_given_on_the_command_line_is_refused_without_echo(outbox5000: Path, form: list[str]) -> None:
    """argv is readable by every user (ps, /proc/PID/cmdline): m2v-edge takes no token there, and says so."""
    for command in (["sync", "--outbox", str(outbox5000)], ["search", "--bundle", "b", "query"]):
        result = run_cli(*command, "--uri", DOWN, "--collection", "c", *form)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "M2V_EDGE_MILVUS_TOKEN" in lines[0] and "--token-file" in lines[0], result.stderr
        assert TOKEN not in result.stdout + result.stderr


def test_server_errors_that_echo_the_token_are_scrubbed() -> None:
    collection = MilvusCollection(parse_target(DOWN, token=Secret(TOKEN)), "c")

    def echoing() -> None:
        raise RuntimeError(f"auth failed for token {TOKEN} (status 401)")

    with pytest.raises(MilvusSyncError) as info:
        collection._call("upsert", echoing)
    assert TOKEN not in str(info.value) and "***" in str(info.value)
    assert info.value.__suppress_context__  # tracebacks do not show the original message either


def test_https_client_options_keep_verification_on(monkeypatch) -> None:
    """What reaches grpc for an https target: a secure channel with the system's root certificates, no override."""
    import grpc

    credentials: list[dict] = []
    channels: list[tuple[str, list]] = []
    make_credentials, secure_channel = grpc.ssl_channel_credentials, grpc.secure_channel

    def recording_credentials(*args, **kwargs):
        credentials.append(dict(kwargs, args=args))
        return make_credentials(*args, **kwargs)

    def recording_channel(target, creds, options=None, *args, **kwargs):
        channels.append((target, list(options or [])))
        return secure_channel(target, creds, options, *args, **kwargs)

    def insecure(*args, **kwargs):
        raise AssertionError("an https target got an insecure channel")

    monkeypatch.setattr(grpc, "ssl_channel_credentials", recording_credentials)
    monkeypatch.setattr(grpc, "secure_channel", recording_channel)
    monkeypatch.setattr(grpc, "insecure_channel", insecure)
    collection = MilvusCollection(parse_target("https://127.0.0.1:9", token=Secret(TOKEN)), "c", timeout=1)
    with pytest.raises(MilvusSyncError):
        collection.connect()  # nothing listens: it fails, but only after choosing its channel
    assert credentials and channels
    for kwargs in credentials:  # None = grpc's default trust store, and no client certificate
        assert kwargs["args"] == () and kwargs.get("root_certificates") is None, kwargs
    for target, options in channels:
        assert target == "127.0.0.1:9"
        names = [name.decode() if isinstance(name, bytes) else str(name) for name, _ in options]
        assert not [name for name in names if "ssl" in name or "override" in name], options


# ----------------------------------------------------------------------------- a real TLS handshake


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """A TLS server on 127.0.0.1 with a fresh self-signed certificate; yields (port, cert, handshake outcomes)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    outcomes: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    outcomes.append("handshake completed")
            except (ssl.SSLError, OSError) as exc:
                outcomes.append(f"handshake failed: {exc}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], cert, outcomes
    finally:
        listener.close()
        thread.join(timeout=5)


def _connect_in_child(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "from m2v_edge.sync import MilvusCollection, parse_target, read_token\n"
        f"MilvusCollection(parse_target('https://127.0.0.1:{port}', token=read_token()), 'c', timeout=3).connect()\n"
    )
    return subprocess.run([sys.executable, "-c", code], env=cli_env(M2V_EDGE_MILVUS_TOKEN=TOKEN, **env),
                          capture_output=True, text=True, timeout=120, check=False)


def test_https_refuses_an_untrusted_certificate(tls_server) -> None:
    port, cert, outcomes = tls_server
    untrusted = _connect_in_child(port)
    assert untrusted.returncode != 0 and "MilvusUnavailableError" in untrusted.stderr
    assert outcomes and not any(o == "handshake completed" for o in outcomes), outcomes
    assert TOKEN not in untrusted.stdout + untrusted.stderr
    # Control: the same client trusting this certificate completes the handshake, so the refusal above was the
    # certificate check and not something else about the server.
    outcomes.clear()
    trusted = _connect_in_child(port, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(cert))
    assert trusted.returncode != 0  # not a Milvus server, but TLS itself worked
    assert "handshake completed" in outcomes, outcomes
