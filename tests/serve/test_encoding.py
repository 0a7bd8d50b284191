"""The encoding thread on its own: requests after `close` are refused with 503 instead of hanging, the work given
before it is finished, and zero-vector texts are counted instead of logged once per request."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from m2v_edge.serve.encoding import EncodingThread
from m2v_edge.serve.replies import RequestError

DEADLINE = 60.0
"""Seconds a refused request may take; before the fix it never answered."""


def test_a_request_after_close_gets_503_and_the_one_in_flight_its_vectors(embedder) -> None:
    async def scenario() -> None:
        encoding = EncodingThread(embedder)
        in_flight = asyncio.ensure_future(encoding.encode(["a text editor"] * 2000))
        await asyncio.sleep(0)  # one turn of the loop: the request is handed to the thread
        closing = asyncio.ensure_future(encoding.close())
        with pytest.raises(RequestError) as refused:
            await asyncio.wait_for(encoding.encode(["late"]), DEADLINE)
        assert refused.value.status == 503 and "the server is stopping" in refused.value.message
        np.testing.assert_array_equal((await in_flight).vectors, embedder.encode(["a text editor"] * 2000))
        await asyncio.wait_for(closing, DEADLINE)

    asyncio.run(scenario())


def test_zero_vector_texts_are_counted_not_logged_per_request(embedder, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> int:
        encoding = EncodingThread(embedder)
        try:
            for _ in range(3):
                await encoding.encode(["🙂🎉", "a text editor"])
            return encoding.zero_vector_texts
        finally:
            await encoding.close()

    with caplog.at_level(logging.WARNING, logger="m2v_edge.runtime.zero_vectors"):
        assert asyncio.run(scenario()) == 3
    assert not caplog.records
