"""The baseline for swarm fan-out: a bare `websockets` server that broadcasts each message it
receives, as a STATE-shaped frame of the same size, to every other client. No storage, no
authentication, no coalescing: the floor for delivering one change to every client.

    python -m bench.baseline_broadcast PORT
"""

import asyncio
import json
import sys

import websockets

CLIENTS: set = set()


async def serve(ws: websockets.ServerConnection) -> None:
    CLIENTS.add(ws)
    try:
        async for message in ws:
            if message == "ping":
                await ws.send("pong")
                continue
            change = json.loads(message)["data"]
            state = {"version": change.get("score", 0), "full": False, "since": 0,
                     "devices": [{"id": "dev_" + "0" * 26, "name": None, "status": "online",
                                  "quota": 2}], "jobs": []}  # fmt: skip
            websockets.broadcast(CLIENTS - {ws}, json.dumps({"type": "STATE", "data": state}))
    finally:
        CLIENTS.discard(ws)


async def main(port: int) -> None:
    async with websockets.serve(serve, "127.0.0.1", port, max_size=2**20):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
