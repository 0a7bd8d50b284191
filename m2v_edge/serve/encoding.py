"""The encoding thread: every embedding request of the server is encoded there, off the event loop.

Micro-batching: requests that arrive while the thread is busy (or in the same turn of the event loop) wait at most
as long as the work in front of them, and are then handed to the thread together, in one hop instead of one each.
There, each request is still encoded by its own `EdgeEmbedder.encode` call, so its vectors are exactly those of
`encode(its texts)`: pooling texts of several requests in one onnxruntime batch would change the last bits of a
single text's vector (the native core and onnxruntime sum in different orders), and would save little (a short
text costs about as much alone as in a batch: 24 against 21 us in process). With `group_requests=False` each
request is handed over alone (`python -m bench.serve` measures both: grouping is 1.8-4.6x faster at 4-64 clients).

`EdgeEmbedder.encode` logs a WARNING per call whose texts gave zero vectors; the thread drops those (the log has one
line per request) and counts the texts instead (`zero_vector_texts`, shown by `/health`). Once `close` is called,
requests waiting or arriving get 503 while the thread finishes what it was given.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from m2v_edge.runtime import EdgeEmbedder
from m2v_edge.runtime.zero_vectors import zero_rows
from m2v_edge.serve.replies import server_stopping
from m2v_edge.sync.ingest import own_zero_vector_warnings


@dataclass(frozen=True)
class Encoded:
    """One request's vectors (float32 [n, dim]) and, when asked for, each text's token count."""

    vectors: np.ndarray
    token_counts: list[int] | None


@dataclass
class _Job:
    texts: list[str]
    normalize: bool | None
    count_tokens: bool
    future: asyncio.Future[Encoded] = field(repr=False)


class EncodingThread:
    """Encodes requests' texts in one worker thread; see the module's docstring."""

    def __init__(self, embedder: EdgeEmbedder, *, group_requests: bool = True) -> None:
        self.embedder = embedder
        self.group_requests = group_requests
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m2v-edge-encode")
        self._waiting: list[_Job] = []
        self._busy = False
        self._closed = False
        self.zero_vector_texts = 0
        """Texts encoded to zero vectors since the start (the model knows none of their tokens)."""

    async def encode(self, texts: list[str], *, normalize: bool | None = None, count_tokens: bool = False) -> Encoded:
        """The vectors of `texts`, exactly as `embedder.encode(texts, normalize=normalize)` gives them."""
        if self._closed:
            raise server_stopping()
        loop = asyncio.get_running_loop()
        job = _Job(texts, normalize, count_tokens, loop.create_future())
        self._waiting.append(job)
        if not self._busy:
            self._busy = True
            loop.call_soon(self._hand_over, loop)  # after this turn: requests parsed in it go along
        return await job.future

    async def close(self) -> None:
        """Refuse new requests (503), let the thread finish what it was given, then stop it (waiting off the loop,
        which keeps answering meanwhile)."""
        self._closed = True
        self._refuse_waiting()
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    def token_counts(self, texts: list[str]) -> list[int]:
        """How many tokens each text's vector is the mean of: model2vec's tokens of the text cut to `max_length *
        median_token_length` characters, without special and unknown tokens, at most `max_length` of them."""
        limit = self.embedder.manifest.char_limit
        cut = texts if limit is None else [text[:limit] for text in texts]
        return [len(ids) for ids in self.embedder.tokenize(cut)]

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed:  # the executor takes no more work
            self._refuse_waiting()
            self._busy = False
            return
        if self.group_requests:
            jobs, self._waiting = self._waiting, []
        else:
            jobs, self._waiting = self._waiting[:1], self._waiting[1:]
        done = loop.run_in_executor(self._executor, self._run, jobs)
        done.add_done_callback(partial(self._finished, loop, jobs))

    def _run(self, jobs: list[_Job]) -> list[Encoded | BaseException]:
        results: list[Encoded | BaseException] = []
        with own_zero_vector_warnings():  # counted instead: one log line per request
            for job in jobs:
                try:
                    vectors = self.embedder.encode(job.texts, normalize=job.normalize)
                    counts = self.token_counts(job.texts) if job.count_tokens else None
                    self.zero_vector_texts += len(zero_rows(vectors))
                    results.append(Encoded(vectors, counts))
                except Exception as exc:  # handed to the request that caused it, which replies 500
                    results.append(exc)
        return results

    def _refuse_waiting(self) -> None:
        jobs, self._waiting = self._waiting, []
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(server_stopping())

    def _finished(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job], done: asyncio.Future[list]) -> None:
        """In the event loop: give each request its result, then hand over whatever arrived meanwhile."""
        failure = RuntimeError("the encoding thread stopped") if done.cancelled() else done.exception()
        results = [failure] * len(jobs) if failure is not None else done.result()
        for job, result in zip(jobs, results):
            if job.future.done():  # the client went away and its request was cancelled
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        if self._waiting:
            self._hand_over(loop)
        else:
            self._busy = False
