"""What `m2v-edge encode` reads: plain text or JSON Lines (from a file or piped), which field holds the text, what
the output carries, and how bad lines and wrong paths are reported. Each case runs the command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.runtime import EdgeEmbedder

RECORDS = [
    {"id": "a", "text": "a fast text editor", "metadata": {"lang": "en", "stars": 4}},
    {"id": 7, "text": "library for parsing XML documents"},
    {"text": "no id on this line"},
]


def encode(bundle: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "m2v_edge.cli", "encode", str(bundle), "--variant", "fp32", *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


@pytest.fixture(scope="module")
def expected(potion_bundle: Path) -> np.ndarray:
    return EdgeEmbedder(potion_bundle, variant="fp32").encode([row["text"] for row in RECORDS])


def test_piped_jsonl_is_read_as_jsonl_and_the_output_carries_id_and_metadata(potion_bundle, expected) -> None:
    result = encode(potion_bundle, stdin=jsonl(RECORDS))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(row) for row in rows] == [["id", "metadata", "vector"], ["id", "vector"], ["vector"]]
    assert [row.get("id") for row in rows] == ["a", 7, None]
    assert rows[0]["metadata"] == {"lang": "en", "stars": 4}
    np.testing.assert_allclose([row["vector"] for row in rows], expected, atol=1e-6)


def test_input_format_and_text_field(potion_bundle, expected, tmp_path: Path) -> None:
    renamed = [{"id": row.get("id"), "body": row["text"]} for row in RECORDS]
    source = tmp_path / "records.txt"  # not a .jsonl name: --input-format decides
    source.write_text(jsonl(renamed), encoding="utf-8")
    result = encode(potion_bundle, "--input", str(source), "--input-format", "jsonl", "--text-field", "body")
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose([json.loads(line)["vector"] for line in result.stdout.splitlines()], expected, atol=1e-6)
    detected = encode(potion_bundle, "--text-field", "body", stdin=jsonl(renamed))  # the first line has 'body'
    assert detected.stdout == result.stdout


def test_text_that_merely_looks_like_json_stays_text(potion_bundle) -> None:
    lines = ['{"title": "a JSON object without the text field"}', "plain text"]
    expected = EdgeEmbedder(potion_bundle, variant="fp32").encode(lines)
    for extra in ([], ["--input-format", "text"]):
        result = encode(potion_bundle, *extra, stdin="".join(f"{line}\n" for line in lines))
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        np.testing.assert_allclose(rows, expected, atol=1e-6)  # bare arrays: one vector per text line
    forced = encode(potion_bundle, "--input-format", "text", stdin=jsonl(RECORDS))
    raw = EdgeEmbedder(potion_bundle, variant="fp32").encode([json.dumps(row, ensure_ascii=False) for row in RECORDS])
    np.testing.assert_allclose([json.loads(line) for line in forced.stdout.splitlines()], raw, atol=1e-6)


def test_every_bad_line_is_listed_and_no_output_is_written(potion_bundle, tmp_path: Path) -> None:
    lines = [jsonl(RECORDS[:1]).strip(), "not json", '{"text": 3}', "", '["a list"]', '{"id": "x"}',
             jsonl(RECORDS[1:2]).strip(), '{"text": "ok", "broken": ']
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "vectors.jsonl"
    result = encode(potion_bundle, "--input", str(source), "--output", str(out))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"m2v-edge encode: error: --input {source}: 5 bad lines of 8: line 2: invalid JSON (Expecting value); "
        "line 3: 'text' is int, not a string; line 5: expected a JSON object with a 'text' field; "
        "line 6: expected a JSON object with a 'text' field; line 8: invalid JSON (Expecting value)"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.jsonl"]


def test_past_twenty_bad_lines_the_rest_are_counted(potion_bundle) -> None:
    result = encode(potion_bundle, stdin=jsonl(RECORDS[:1]) + "{}\n" * 25)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "--input -: 25 bad lines of 26: line 2: " in message and "line 21: " in message
    assert "line 22" not in message and message.endswith("; and 5 more")


def test_a_missing_input_file_names_the_option(potion_bundle, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "m2v_edge.cli", "encode", str(potion_bundle), "--input", "nosuch.txt"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "m2v-edge encode: error: --input nosuch.txt: no such file\n"
