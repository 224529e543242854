"""Baseline: the same task lifecycle with nothing but Starlette and one SQLite file.

POST /api/task inserts the task, dispatches it in the background (insert the attempt, POST the
backend, mark it assigned); PUT /api/task/{id} (the backend's callback) closes the attempt and
the task. The same rows apiary's D1 projection writes, none of its guarantees.
"""

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

db = sqlite3.connect(Path(tempfile.mkdtemp()) / "baseline.sqlite", isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE tasks (id TEXT PRIMARY KEY, status TEXT, payload TEXT, updated REAL)")
db.execute(
    "CREATE TABLE attempts (task_id TEXT, n INTEGER, outcome TEXT, PRIMARY KEY (task_id, n))"
)
BACKEND = sys.argv[2] if len(sys.argv) > 2 else ""
PUBLIC = f"http://127.0.0.1:{sys.argv[1] if len(sys.argv) > 1 else 0}"
client = httpx.AsyncClient(timeout=10)
background: set[asyncio.Task[None]] = set()


async def dispatch(task_id: str, payload: object) -> None:
    db.execute("INSERT INTO attempts (task_id, n) VALUES (?, 1)", (task_id,))
    body = {"id": task_id, "type": "echo", "payload": payload, "lease_id": "l",
            "callback_url": f"{PUBLIC}/api/task/{task_id}"}  # fmt: skip
    await client.post(f"{BACKEND}/tasks", json=body)
    db.execute("UPDATE tasks SET status = 'assigned', updated = ? WHERE id = ? AND status = "
               "'pending'", (time.time(), task_id))  # fmt: skip


async def create(request: Request) -> JSONResponse:
    body = await request.json()
    task_id = uuid.uuid4().hex
    db.execute("INSERT INTO tasks VALUES (?, 'pending', ?, ?)",
               (task_id, json.dumps(body.get("payload")), time.time()))  # fmt: skip
    job = asyncio.create_task(dispatch(task_id, body.get("payload")))
    background.add(job)
    job.add_done_callback(background.discard)
    return JSONResponse({"id": task_id, "status": "pending"}, 201)


async def update(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    body = await request.json()
    db.execute("UPDATE attempts SET outcome = ? WHERE task_id = ? AND n = 1",
               (body["status"], task_id))  # fmt: skip
    db.execute("UPDATE tasks SET status = ?, updated = ? WHERE id = ?",
               (body["status"], time.time(), task_id))  # fmt: skip
    return JSONResponse({"id": task_id, "status": body["status"]})


async def done(_: Request) -> JSONResponse:
    count = db.execute("SELECT COUNT(*) FROM tasks WHERE status = 'succeeded'").fetchone()[0]
    return JSONResponse({"succeeded": count})


app = Starlette(
    routes=[
        Route("/api/task", create, methods=["POST"]),
        Route("/api/task/{task_id}", update, methods=["PUT"]),
        Route("/done", done),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
