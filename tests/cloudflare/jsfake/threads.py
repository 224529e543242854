"""Pyodide has no threads: while the fake is installed, starting one raises as it does there.

In Pyodide (and so in workerd's Python Workers) `threading.Thread.start` raises
`RuntimeError("can't start new thread")`. FastAPI runs a plain-`def` route or dependency in a
worker thread (through anyio), so on Cloudflare such a route answers 500; disabling threads
here makes the same code fail the same way in the Cloudflare-side tests.
"""

from __future__ import annotations

import _thread
import threading
from typing import Any

_saved: dict[str, Any] = {}


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("can't start new thread")


def disable() -> None:
    if _saved:
        return
    _saved["Thread.start"] = threading.Thread.start
    _saved["start_new_thread"] = _thread.start_new_thread
    threading.Thread.start = _refuse  # type: ignore[method-assign]
    _thread.start_new_thread = _refuse


def restore() -> None:
    if not _saved:
        return
    threading.Thread.start = _saved.pop("Thread.start")  # type: ignore[method-assign]
    _thread.start_new_thread = _saved.pop("start_new_thread")
