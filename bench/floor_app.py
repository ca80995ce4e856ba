"""The framework floor: a bare Litestar app on uvicorn, served like the service, answering a small
JSON object. What this machine gives the framework alone, right now (DESIGN.md §11: ~20,000/s).

    python bench/floor_app.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, get


@get("/floor")
async def floor() -> dict[str, object]:
    return {"decision": "allow", "purpose": "analytics", "reasons": []}


app = Litestar([floor])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        server_header=False,
    )
