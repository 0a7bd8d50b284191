"""`python -m bench.serve_floor`: an ASGI app that does no work, served exactly as `m2v-edge serve` is (uvicorn,
httptools, uvloop, the same socket and settings), replying to every request with an embeddings reply of one fixed
256-float vector. `python -m bench.serve` measures it as the ceiling of the HTTP stack on the machine: what a server
could reach if embedding, checking and logging cost nothing."""

from __future__ import annotations

import sys
from typing import Any

import orjson

from m2v_edge.serve import listen, run_server, url_of

REPLY = orjson.dumps({
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.04389796406030655] * 256}],
    "model": "floor",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the request's body, send `REPLY`; answer the lifespan protocol."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": REPLY})


def main() -> None:
    sock = listen("127.0.0.1", 0)
    run_server(app, sock, on_ready=lambda: print(f"floor on {url_of(sock)}", file=sys.stderr, flush=True))


if __name__ == "__main__":
    main()
