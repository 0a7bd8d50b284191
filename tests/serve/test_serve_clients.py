"""Real clients against a real `m2v-edge serve`: pymilvus-model's TEI function, the `openai` package, curl, and
huggingface_hub's TEI client. Every vector must equal `EdgeEmbedder.encode`'s bit for bit, and the token counts
must be model2vec's."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

EDGE_CASES = ["", "🙂🙂", "Zeichensätze für Umlaute: äöü ß", "word " * 1500]
"""An empty text and emoji (zero vectors, 0 tokens), non-ASCII, and a text past model2vec's character cut."""


@pytest.fixture(scope="module")
def texts(debian_texts: list[str]) -> list[str]:
    return debian_texts[:24] + debian_texts[8000:8006] + EDGE_CASES


def _exactly(received: object, expected: np.ndarray) -> None:
    """`received` (parsed from JSON or base64) holds `expected`'s float32 values exactly."""
    array = np.asarray(received, dtype=np.float64)
    assert array.shape == expected.shape
    assert np.array_equal(array, expected.astype(np.float64))  # the JSON doubles are the float32 values
    assert array.astype(np.float32).tobytes() == expected.tobytes()


def test_pymilvus_tei_embedding_function_works_unchanged(server_url: str, embedder, texts: list[str]) -> None:
    from pymilvus.model.dense import TEIEmbeddingFunction

    function = TEIEmbeddingFunction(api_url=server_url)  # posts {"input": [...]} without "model" to /v1/embeddings
    assert function.dim == embedder.dim == 256
    _exactly(function.encode_documents(texts), embedder.encode(texts))
    _exactly(function.encode_queries(texts[:1]), embedder.encode(texts[:1]))


def test_pymilvus_tei_embedding_function_reports_the_servers_message(server_url: str) -> None:
    from pymilvus.model.dense import TEIEmbeddingFunction

    with pytest.raises(RuntimeError, match=r"input\[0\] must be a string"):
        TEIEmbeddingFunction(api_url=server_url)([3])  # it reads the top-level "message" of an error


def test_openai_client_float_and_base64(server_url: str, embedder, texts: list[str]) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0)
    as_floats = client.embeddings.create(model="potion-base-8M", input=texts, encoding_format="float")
    assert [item.index for item in as_floats.data] == list(range(len(texts)))
    _exactly([item.embedding for item in as_floats.data], embedder.encode(texts))
    assert as_floats.model == "potion-base-8M"
    as_default = client.embeddings.create(model="anything", input=texts[0])  # the package asks for base64 itself
    _exactly([as_default.data[0].embedding], embedder.encode(texts[:1]))
    assert as_default.usage.prompt_tokens == as_default.usage.total_tokens > 0


def test_usage_counts_the_tokens_model2vec_averages(server_url: str, potion_source: Path, texts: list[str]) -> None:
    """`usage.prompt_tokens` is the sum over the texts of the tokens each vector is the mean of: model2vec's tokens
    of the text cut to max_length * median_token_length characters, unknown tokens dropped, at most max_length."""
    from model2vec import StaticModel
    from openai import OpenAI

    model = StaticModel.from_pretrained(potion_source)
    cut = model.max_length * model.median_token_length
    counts = [len(ids) for ids in model.tokenize([text[:cut] for text in texts])]
    assert counts[-1] == model.max_length and counts[len(texts) - 4 : len(texts) - 2] == [0, 0]  # the edge cases
    client = OpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0)
    for text, count in zip(texts, counts):
        assert client.embeddings.create(model="m", input=[text]).usage.prompt_tokens == count, text[:40]
    assert client.embeddings.create(model="m", input=texts).usage.total_tokens == sum(counts)


def test_curl_embeddings_and_embed(server_url: str, embedder, texts: list[str]) -> None:
    def curl(path: str, body: dict) -> object:
        done = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "-H", "Content-Type: application/json", "-d", json.dumps(body),
             f"{server_url}{path}"], capture_output=True, text=True, timeout=60, check=True,
        )
        return json.loads(done.stdout)

    reply = curl("/v1/embeddings", {"input": texts[:3], "model": "m"})
    _exactly([item["embedding"] for item in reply["data"]], embedder.encode(texts[:3]))
    encoded = curl("/v1/embeddings", {"input": texts[3], "encoding_format": "base64"})["data"][0]["embedding"]
    _exactly([np.frombuffer(base64.b64decode(encoded), dtype="<f4")], embedder.encode(texts[3:4]))
    _exactly(curl("/embed", {"inputs": texts}), embedder.encode(texts))
    _exactly(curl("/embed", {"inputs": texts[5]}), embedder.encode(texts[5:6]))


def test_tei_json_client(server_url: str, embedder, texts: list[str]) -> None:
    """huggingface_hub's `InferenceClient`, the client TEI's documentation uses, at `/embed` and at the root."""
    from huggingface_hub import InferenceClient

    for client in (InferenceClient(model=f"{server_url}/embed"), InferenceClient(base_url=server_url)):
        _exactly(client.feature_extraction(texts[7]), embedder.encode(texts[7:8]))
        _exactly(client.feature_extraction(texts[9], normalize=True, truncate=True), embedder.encode(texts[9:10]))


def test_single_texts_at_once_each_get_their_own_vector(server_url: str, embedder, texts: list[str]) -> None:
    """Concurrent requests (grouped for the encoding thread) each get exactly `encode(their texts)`."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    def asked(index: int) -> list[str]:
        return texts[index : index + (1 if index % 3 else 4)]

    def post(index: int) -> list[list[float]]:
        reply = requests.post(f"{server_url}/embed", json={"inputs": asked(index)}, timeout=60)
        reply.raise_for_status()
        return reply.json()

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(post, range(len(texts))))
    for index, reply in enumerate(replies):
        _exactly(reply, embedder.encode(asked(index)))


def test_health_and_info(server_url: str, embedder) -> None:
    import requests

    import m2v_edge

    assert requests.get(f"{server_url}/health", timeout=60).json()["in_flight"] == 1
    info = requests.get(f"{server_url}/info", timeout=60).json()
    assert info["model"] == "potion-base-8M" and info["source"]["id"] == "potion-base-8M"
    assert (info["fingerprint"], info["dim"], info["variant"], info["profile"]) == (
        embedder.fingerprint, 256, "int8", "generic")
    assert info["version"] == m2v_edge.__version__ and info["outbox"] is None
