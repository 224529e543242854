"""Baseline: the least a /health endpoint can do on this stack (Starlette, SQLite, uvicorn)."""

import sqlite3
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

conn = sqlite3.connect(Path(tempfile.mkdtemp()) / "baseline.sqlite", check_same_thread=False)


async def health(request: object) -> JSONResponse:
    conn.execute("SELECT 1").fetchall()
    return JSONResponse(
        {
            "status": "ok",
            "timestamp": datetime.now(UTC).isoformat(),
            "environment": "development",
            "version": "0.1.0",
            "checks": {"database": "ok"},
        }
    )


app = Starlette(routes=[Route("/health", health)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
