"""Every command, given bad arguments or bad input, exits with status 2 and one line on stderr naming the problem.

No traceback unless `--verbose`, which shows it for errors raised while running (argument errors are usage
errors: argparse's one line either way). Each case runs `python -m m2v_edge.cli` in a subprocess; the cases run
concurrently (they are independent) and each is then checked as its own test.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.tiny_models import TinyModels

SPEC = "wp-f32-L1"
USAGE, INPUT = "usage", "input"

# (id, argv, what the message must say, kind); UPPER-CASE words are replaced by paths made in `workspace`.
CASES = [
    ("top-unknown-command", ["bogus"], "invalid choice: 'bogus'", USAGE),
    ("export-bad-dim", ["export", "SOURCE", "-o", "NEW", "--dim", "abc"], "invalid int value: 'abc'", USAGE),
    ("export-missing-source", ["export", "MISSING", "-o", "NEW"], "neither an existing folder nor a Hub id", INPUT),
    ("export-bad-variant", ["export", "SOURCE", "-o", "NEW", "--variants", "fp8"], "unknown variant", INPUT),
    ("export-output-exists", ["export", "SOURCE", "-o", "BUNDLE"], "already exists", INPUT),
    ("export-dim-out-of-range", ["export", "SOURCE", "-o", "NEW", "--dim", "999"], "out of range", INPUT),
    ("export-max-length-zero", ["export", "SOURCE", "-o", "NEW", "--max-length", "0"], "--max-length: must be >= 1", USAGE),
    ("export-subfolder-escapes", ["export", "SOURCE", "-o", "NEW", "--subfolder", "../up"], "without '..'", INPUT),
    ("export-token-file-missing", ["export", "SOURCE", "-o", "NEW", "--token-file", "MISSING"],
     "--token-file", INPUT),
    ("export-token-file-empty", ["export", "SOURCE", "-o", "NEW", "--token-file", "EMPTY"], "is empty", INPUT),
    ("export-subfolder-missing", ["export", "SOURCE", "-o", "NEW", "--subfolder", "nope"], "no subfolder 'nope'", INPUT),
    ("encode-batch-zero", ["encode", "BUNDLE", "--batch", "0"], "--batch: must be >= 1", USAGE),
    ("encode-bad-format", ["encode", "BUNDLE", "--format", "csv"], "invalid choice: 'csv'", USAGE),
    ("encode-bad-input-format", ["encode", "BUNDLE", "--input-format", "csv"], "invalid choice: 'csv'", USAGE),
    ("encode-input-folder", ["encode", "BUNDLE", "--input", "BUNDLE"], "is a folder; give a text or .jsonl file",
     INPUT),
    ("encode-missing-text-field", ["encode", "BUNDLE", "--input", "RECORDS", "--text-field", "body"],
     "line 1: expected a JSON object with a 'body' field", INPUT),
    ("encode-missing-bundle", ["encode", "MISSING"], "does not exist", INPUT),
    ("encode-missing-input", ["encode", "BUNDLE", "--input", "MISSING"], "no such file", INPUT),
    ("encode-bad-jsonl", ["encode", "BUNDLE", "--input", "BAD_JSONL"], "line 2: invalid JSON", INPUT),
    ("encode-text-not-string", ["encode", "BUNDLE", "--input", "NUMBER_JSONL"], "'text' is int, not a string", INPUT),
    ("encode-not-utf8", ["encode", "BUNDLE", "--input", "NOT_UTF8"], "line 2: not UTF-8", INPUT),
    ("encode-npy-to-stdout", ["encode", "BUNDLE", "--format", "npy"], "--format npy needs --output FILE", INPUT),
    ("encode-output-folder-missing", ["encode", "BUNDLE", "--output", "MISSING/v.jsonl"], "does not exist", INPUT),
    ("encode-hostile-bundle", ["encode", "HOSTILE", "--variant", "fp32"], "external file '../secret.bin'", INPUT),
    ("encode-unknown-variant", ["encode", "BUNDLE", "--variant", "int4"], "has no variant 'int4'", INPUT),
    ("profile-no-action", ["profile"], "required: ACTION", USAGE),
    ("profile-list-extra", ["profile", "list", "extra"], "unrecognized arguments: extra", USAGE),
    ("profile-list-broken-user-profile", ["profile", "list"], "'session.intra_op_threads' must be", INPUT),
    ("profile-show-unknown", ["profile", "show", "no-such-profile"], "unknown device profile 'no-such-profile'", INPUT),
    ("profile-show-bad-toml", ["profile", "show", "BAD_JSONL"], "not valid TOML", INPUT),
    ("profile-detect-missing-root", ["profile", "detect", "--root", "MISSING"], "is not a folder", INPUT),
    ("tune-zero-threads", ["tune", "BUNDLE", "--threads", "0"], "expected integers >= 1", USAGE),
    ("tune-negative-seconds", ["tune", "BUNDLE", "--min-seconds", "-1"], "seconds > 0", USAGE),
    ("tune-missing-bundle", ["tune", "MISSING"], "does not exist", INPUT),
    ("tune-unknown-variant", ["tune", "BUNDLE", "--variants", "int4"], "has no variant 'int4'", INPUT),
    ("tune-bad-profile-name", ["tune", "BUNDLE", "--write", "--name", "Bad Name"], "cannot save a profile", INPUT),
    ("package-no-output", ["package", "BUNDLE"], "required: -o/--output", USAGE),
    ("package-missing-bundle", ["package", "MISSING", "-o", "NEW"], "does not exist", INPUT),
    ("package-bad-name", ["package", "BUNDLE", "-o", "NEW", "--name", "!!"], "not a valid model name", INPUT),
    ("package-bad-version", ["package", "BUNDLE", "-o", "NEW", "--version", "one"], "PEP 440", INPUT),
    ("package-unknown-variant", ["package", "BUNDLE", "-o", "NEW", "--variants", "int8,int4"],
     "has no variant 'int4'; it has", INPUT),
    ("package-no-variants", ["package", "BUNDLE", "-o", "NEW", "--variants", ","], "expected at least one variant",
     USAGE),
    ("models-unknown-option", ["models", "--bogus"], "unrecognized arguments: --bogus", USAGE),
    ("ingest-no-bundle", ["ingest", "--outbox", "NEW", "RECORDS"], "required: --bundle", USAGE),
    ("ingest-batch-zero", ["ingest", "--bundle", "BUNDLE", "--outbox", "NEW", "--batch-size", "0"], ">= 1", USAGE),
    ("ingest-missing-records", ["ingest", "--bundle", "BUNDLE", "--outbox", "NEW", "MISSING"], "does not exist", INPUT),
    ("ingest-bad-records", ["ingest", "--bundle", "BUNDLE", "--outbox", "NEW", "BAD_JSONL"], "nothing ingested", INPUT),
    ("ingest-foreign-outbox", ["ingest", "--bundle", "BUNDLE", "--outbox", "GARBAGE", "RECORDS"],
     "is not an m2v-edge outbox", INPUT),
    ("sync-zero-interval", ["sync", "--outbox", "GARBAGE", "--uri", "LITE", "--collection", "c", "--interval", "0"],
     "seconds > 0", USAGE),
    ("sync-token-in-argv", ["sync", "--outbox", "GARBAGE", "--uri", "LITE", "--collection", "c", "--token", "x"],
     "never taken on the command line", USAGE),
    ("sync-bad-scheme", ["sync", "--outbox", "GARBAGE", "--uri", "tcp://h:1", "--collection", "c"],
     "unsupported Milvus target scheme", INPUT),
    ("sync-missing-outbox", ["sync", "--outbox", "MISSING", "--uri", "LITE", "--collection", "c"],
     "does not exist", INPUT),
    ("sync-foreign-outbox", ["sync", "--outbox", "GARBAGE", "--uri", "LITE", "--collection", "c"],
     "is not an m2v-edge outbox", INPUT),
    ("status-no-outbox", ["status"], "required: --outbox", USAGE),
    ("status-missing-outbox", ["status", "--outbox", "MISSING"], "does not exist", INPUT),
    ("status-foreign-outbox", ["status", "--outbox", "GARBAGE"], "is not an m2v-edge outbox", INPUT),
    ("status-folder", ["status", "--outbox", "BUNDLE"], "is a folder", INPUT),
    ("search-k-zero", ["search", "--bundle", "BUNDLE", "--uri", "LITE", "--collection", "c", "-k", "0", "q"],
     "-k: must be >= 1", USAGE),
    ("search-bad-scheme", ["search", "--bundle", "BUNDLE", "--uri", "s3://b", "--collection", "c", "q"],
     "unsupported Milvus target scheme", INPUT),
    ("search-missing-database", ["search", "--bundle", "BUNDLE", "--uri", "LITE", "--collection", "c", "q"],
     "does not exist; run 'm2v-edge sync' first", INPUT),
    ("search-bad-collection", ["search", "--bundle", "BUNDLE", "--uri", "LITE", "--collection", "no way", "q"],
     "invalid collection name", INPUT),
    ("delete-no-ids", ["delete", "--outbox", "GARBAGE"], "required: ID", USAGE),
    ("delete-missing-outbox", ["delete", "--outbox", "MISSING", "a"], "does not exist", INPUT),
    ("delete-foreign-outbox", ["delete", "--outbox", "GARBAGE", "a"], "is not an m2v-edge outbox", INPUT),
    ("search-outbox-and-milvus", ["search", "--bundle", "BUNDLE", "--outbox", "GARBAGE", "--uri", "LITE",
                                  "--collection", "c", "q"], "give either --outbox (offline search) or both", INPUT),
    ("search-foreign-outbox", ["search", "--bundle", "BUNDLE", "--outbox", "GARBAGE", "q"],
     "is not an m2v-edge outbox", INPUT),
    ("ingest-bad-kiosk-id", ["ingest", "--bundle", "BUNDLE", "--outbox", "NEW", "--kiosk-id", "a:b", "RECORDS"],
     "invalid kiosk id 'a:b'", INPUT),
    ("reembed-no-bundle", ["reembed", "--outbox", "GARBAGE"], "required: --bundle", USAGE),
    ("reembed-missing-outbox", ["reembed", "--outbox", "MISSING", "--bundle", "BUNDLE"], "does not exist", INPUT),
    ("reembed-foreign-outbox", ["reembed", "--outbox", "GARBAGE", "--bundle", "BUNDLE"],
     "is not an m2v-edge outbox", INPUT),
    ("vacuum-missing-outbox", ["vacuum", "--outbox", "MISSING"], "does not exist", INPUT),
    ("vacuum-foreign-outbox", ["vacuum", "--outbox", "GARBAGE"], "is not an m2v-edge outbox", INPUT),
    ("serve-token-in-argv", ["serve", "BUNDLE", "--token", "x"], "the serve token is never taken on the command line",
     USAGE),
    ("alias-no-alias", ["alias", "--uri", "LITE", "--collection", "c"], "required: --alias", USAGE),
    ("alias-missing-database", ["alias", "--uri", "LITE", "--collection", "c", "--alias", "a"],
     "does not exist; run 'm2v-edge sync' first", INPUT),
]
VERBOSE = sorted({case[1][0] for case in CASES if case[3] == INPUT})
"""One `--verbose` run per command that has input errors: the first such case of each."""


def _hostile_copy(bundle: Path, target: Path) -> Path:
    """The bundle with its fp32 table moved to external data outside the folder (manifest sha256 updated)."""
    import onnx
    from onnx import TensorProto

    copy = Path(shutil.copytree(bundle, target))
    model = onnx.load(str(copy / "model.fp32.onnx"))
    table = next(t for t in model.graph.initializer if t.name == "table")
    table.ClearField("raw_data")
    table.data_location = TensorProto.EXTERNAL
    entry = table.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    data = model.SerializeToString()
    (copy / "model.fp32.onnx").write_bytes(data)
    manifest = json.loads((copy / "m2v_edge.json").read_text(encoding="utf-8"))
    for variant in ("fp16", "int8"):
        manifest["variants"].pop(variant)
        manifest["tables"].pop(variant)
        (copy / f"model.{variant}.onnx").unlink()
        (copy / f"model.{variant}.data").unlink()
    manifest["variants"]["fp32"].update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    (copy / "m2v_edge.json").write_text(json.dumps(manifest), encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def workspace(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli-errors")
    paths = {
        "SOURCE": tiny_models.folder(SPEC),
        "BUNDLE": Path(shutil.copytree(tiny_models.bundle(SPEC), root / "bundle")),
        "HOSTILE": _hostile_copy(tiny_models.bundle(SPEC), root / "hostile"),
        "MISSING": root / "does-not-exist",
        "NEW": root / "new" / "thing",
        "GARBAGE": root / "garbage.outbox",
        "BAD_JSONL": root / "bad.jsonl",
        "NUMBER_JSONL": root / "number.jsonl",
        "NOT_UTF8": root / "latin1.txt",
        "EMPTY": root / "empty.txt",
        "RECORDS": root / "records.jsonl",
        "LITE": root / "milvus.db",
    }
    paths["NEW"].parent.mkdir()
    paths["GARBAGE"].write_bytes(b"not a database at all" * 10)
    paths["BAD_JSONL"].write_text('{"id": "1", "text": "fine"}\nnot json\n', encoding="utf-8")
    paths["NUMBER_JSONL"].write_text('{"text": 42}\n', encoding="utf-8")
    paths["NOT_UTF8"].write_bytes("first line\ncaf\xe9\n".encode("latin-1"))
    paths["EMPTY"].write_text("\n", encoding="utf-8")
    paths["RECORDS"].write_text('{"id": "1", "text": "quick brown fox"}\n', encoding="utf-8")
    config = root / "config" / "m2v-edge" / "profiles"
    config.mkdir(parents=True)
    (config / "broken.toml").write_text('[session]\nintra_op_threads = "many"\n', encoding="utf-8")
    return {name: str(path) for name, path in paths.items()} | {"_root": str(root)}


def _run(workspace: dict[str, str], argv: list[str], case_id: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("M2V_EDGE_")}
    env["XDG_CACHE_HOME"] = str(Path(workspace["_root"]) / "cache")
    env["XDG_CONFIG_HOME"] = str(Path(workspace["_root"]) / ("config" if "broken" in case_id else "empty-config"))
    args = [workspace.get(word, word) for word in argv]
    args = [arg.replace("MISSING/", workspace["MISSING"] + "/") for arg in args]
    return subprocess.run([sys.executable, "-m", "m2v_edge.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=workspace["_root"], check=False)


@pytest.fixture(scope="module")
def results(workspace: dict[str, str]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case, and the `--verbose` runs, run once, four at a time."""
    runs = {case_id: (argv, case_id) for case_id, argv, _, _ in CASES}
    for command in VERBOSE:
        case_id, argv = next((c[0], c[1]) for c in CASES if c[1][0] == command and c[3] == INPUT)
        runs[f"verbose:{command}"] = (["--verbose", *argv], case_id)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(_run, workspace, argv, case_id) for key, (argv, case_id) in runs.items()}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize(("argv", "needle", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_error_exits_2_with_one_line(results, request, argv: list[str], needle: str, kind: str) -> None:
    result = results[request.node.callspec.id]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("m2v-edge"), lines[0]
    assert " error: " in lines[0] and needle in lines[0], lines[0]
    assert "Traceback" not in result.stderr


PYTHON_KEYWORD = re.compile(r"(?<![\w.-])[a-z_]+=(?!=)")
"""`overwrite=True`, `token=`: how to fix a call in Python, which a command-line user cannot act on."""


@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_errors_name_options_not_python_keywords(results, case_id: str) -> None:
    line = results[case_id].stderr.strip()
    assert not PYTHON_KEYWORD.search(line), line


@pytest.mark.parametrize("command", VERBOSE)
def test_verbose_shows_the_traceback(results, command: str) -> None:
    result = results[f"verbose:{command}"]
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr, result.stderr
    assert "Error" in result.stderr.strip().splitlines()[-1]


def test_every_command_is_covered() -> None:
    from m2v_edge.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    covered = {case[1][0] for case in CASES}
    assert set(commands) <= covered, f"commands without an error case: {set(commands) - covered}"
    profile = commands["profile"]
    actions = next(a for a in profile._actions if a.dest == "action").choices
    assert set(actions) <= {case[1][1] for case in CASES if case[1][0] == "profile" and len(case[1]) > 1}
