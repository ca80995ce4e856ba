"""The floors: what this machine gives the stack alone, served like the service.

    python bench/floor_app.py PORT [litestar|asgi]

`litestar`: a bare Litestar app answering a small JSON object on GET /floor (DESIGN.md §11 says
~20,000/s). `asgi`: a raw ASGI callable giving the same bytes, so uvicorn alone.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from litestar import Litestar, get

BODY = b'{"decision":"allow","purpose":"analytics","reasons":[]}'


@get("/floor")
async def floor() -> dict[str, object]:
    return {"decision": "allow", "purpose": "analytics", "reasons": []}


litestar_app = Litestar([floor])


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def main(argv: list[str]) -> None:
    kind = argv[2] if len(argv) > 2 else "litestar"
    uvicorn.run(
        asgi_app if kind == "asgi" else litestar_app,
        host="127.0.0.1",
        port=int(argv[1]),
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off" if kind == "asgi" else "on",
    )


if __name__ == "__main__":
    main(sys.argv)
