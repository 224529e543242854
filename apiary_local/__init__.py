"""apiary's embedded local runtime: the Worker on CPython, SQLite and uvicorn.

Not under `src/`, never uploaded. It hosts the same app, Durable Object classes and scheduled
handler that `src/entry.py` hands to Cloudflare, with Durable Object semantics: one event at a
time per object, writes durable before outputs leave, persisted alarms, hibernating sockets.
"""
