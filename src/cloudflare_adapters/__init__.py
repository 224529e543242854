"""The Cloudflare adapter set: ports over the Python Workers API (workers-runtime-sdk).

The only place, with `entry.py`, that touches `js`, `pyodide` or `workers`, always lazily, so
these modules import on CPython for the tests. Since SDK 1.3 bindings arrive wrapped: D1
results, storage rows and RPC results are already Python dicts and lists.
"""
