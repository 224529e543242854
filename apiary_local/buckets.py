"""R2 buckets on disk: one directory per bucket, one file per key, written atomically."""

import asyncio
import hashlib
import os
from pathlib import Path


class LocalBucket:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # Keys are arbitrary strings; a digest keeps them off the path syntax.
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / digest[:2] / digest

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return await asyncio.to_thread(path.read_bytes) if path.exists() else None

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)
