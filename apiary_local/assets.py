"""Workers Static Assets on the local runtime: the same routing rules and headers as Cloudflare.

For each HTTP request `apiary dev` asks `StaticAssets.respond` first (as Cloudflare's router
does before invoking the Worker):
1. a path matching `run_worker_first` (`true`, or patterns with `!` exclusions) goes to the
   Worker;
2. otherwise a file of the assets directory is served with `html_handling`
   (`auto-trailing-slash`: `/page` serves `page.html`, `/dir/` serves `dir/index.html`, and the
   other spellings get a 307 to those), a strong ETag, `Cache-Control: public, max-age=0,
   must-revalidate` and a 304 for a matching `If-None-Match`;
3. otherwise `not_found_handling`: `single-page-application` serves `/index.html` with 200,
   `404-page` the nearest `404.html` with 404, `none` hands the request to the Worker.
Without `run_worker_first` patterns, rule 3 applies to navigation requests only
(`Sec-Fetch-Mode: navigate`; others go to the Worker), as on Cloudflare from compatibility
date 2025-04-01; with patterns it applies to every request. An asset answers only GET and HEAD (405
otherwise). `_headers` (see `apiary_local.headers_file`) applies to every asset response;
`Strict-Transport-Security` is left off plain-http responses (RFC 6797 7.2; browsers ignore
it there), which Cloudflare, serving https, never sends. `_headers`, `_redirects` and
`.assetsignore` are never served.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from apiary_local.config import AssetsConfig
from apiary_local.headers_file import Rule, apply, parse

CACHE_CONTROL = "public, max-age=0, must-revalidate"
NEVER_SERVED = frozenset({"_headers", "_redirects", ".assetsignore", "_worker.js"})
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
         ".svg": "image/svg+xml", ".json": "application/json", ".map": "application/json",
         ".html": "text/html", ".txt": "text/plain", ".ico": "image/x-icon",
         ".png": "image/png", ".webmanifest": "application/manifest+json"}  # fmt: skip
TEXT = ("text/", "application/json", "image/svg+xml", "application/manifest+json")


@dataclass(frozen=True, slots=True)
class AssetResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class _Intent:
    file: str | None = None  # a path under the directory, served with `status`
    status: int = 200
    redirect: str | None = None


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


class StaticAssets:
    def __init__(self, config: AssetsConfig) -> None:
        self.config = config
        self.root = config.directory
        first = config.run_worker_first
        self._worker_all = first is True
        patterns = () if isinstance(first, bool) else first
        self._include = [_glob(p) for p in patterns if not p.startswith("!")]
        self._exclude = [_glob(p[1:]) for p in patterns if p.startswith("!")]
        self._static_routing = bool(patterns)

    def _rules(self) -> list[Rule]:
        path = self.root / "_headers"
        return parse(path.read_text()) if path.is_file() else []

    def worker_first(self, path: str) -> bool:
        if any(p.match(path) for p in self._exclude):
            return False
        return self._worker_all or any(p.match(path) for p in self._include)

    def _exists(self, path: str) -> bool:
        """Is `path` (decoded, starting with /) a file of the assets directory?"""
        if not path.startswith("/") or path.endswith("/"):
            return False
        parts = path.strip("/").split("/")
        if any(p in ("", ".", "..") for p in parts) or parts[-1] in NEVER_SERVED:
            return False
        candidate = self.root.joinpath(*parts)
        return candidate.is_file() and self.root in candidate.resolve().parents

    def _redirect_if(self, file: str, destination: str) -> _Intent | None:
        """A 307 to `destination` when `file` exists and is what `destination` would serve."""
        if self._exists(file) and not self._exists(destination):
            served = self._auto(destination, redirects=False)
            if served is not None and served.file == file:
                return _Intent(redirect=destination)
        return None

    def _auto(self, path: str, *, redirects: bool = True) -> _Intent | None:
        """`auto-trailing-slash`, as the asset worker's `htmlHandlingAutoTrailingSlash`."""
        tries: list[tuple[str, str]] = []
        if path.endswith("/index"):
            if self._exists(path):
                return _Intent(path)
            tries = [(f"{path}.html", path[: -len("index")]), (f"{path[:-6]}.html", path[:-6])]
        elif path.endswith("/index.html"):
            tries = [(path, path[: -len("index.html")]), (f"{path[:-11]}.html", path[:-11])]
        elif path.endswith("/"):
            if self._exists(f"{path}index.html"):
                return _Intent(f"{path}index.html")
            tries = [(f"{path[:-1]}.html", path[:-1])]
        elif path.endswith(".html"):
            tries = [(path, path[:-5]), (f"{path[:-5]}/index.html", f"{path[:-5]}/")]
        for file, destination in tries if redirects else []:
            if destination and (found := self._redirect_if(file, destination)):
                return found
        if self._exists(path):
            return _Intent(path)
        if self._exists(f"{path}.html"):
            return _Intent(f"{path}.html")
        if redirects and (found := self._redirect_if(f"{path}/index.html", f"{path}/")):
            return found
        return None

    def _not_found(self, path: str) -> _Intent | None:
        handling = self.config.not_found_handling
        if handling == "single-page-application" and self._exists("/index.html"):
            return _Intent("/index.html")
        if handling == "404-page":
            directory = path
            while directory:
                directory = directory[: directory.rfind("/")]
                if self._exists(f"{directory}/404.html"):
                    return _Intent(f"{directory}/404.html", status=404)
        return None

    def intent(self, path: str, *, navigate: bool = True) -> _Intent | None:
        decoded = re.sub(r"/+", "/", unquote(path))
        if self.config.html_handling == "none":
            found = _Intent(decoded) if self._exists(decoded) else None
        else:
            found = self._auto(decoded)
        if found is None and (navigate or self._static_routing):
            found = self._not_found(decoded)
        return found

    def respond(
        self, method: str, path: str, request_headers: dict[str, str], *, https: bool
    ) -> AssetResponse | None:
        """The asset answer to a request, or None when it belongs to the Worker."""
        if self.worker_first(path):
            return None
        navigate = request_headers.get("sec-fetch-mode") == "navigate"
        found = self.intent(path, navigate=navigate)
        if found is None:
            return None
        host = request_headers.get("host", "").split(":")[0]
        if method not in ("GET", "HEAD"):
            return self._finish(AssetResponse(405, []), path, host, https)
        if found.redirect is not None:
            return self._finish(
                AssetResponse(307, [("Location", found.redirect)]), path, host, https
            )
        assert found.file is not None
        body = self.root.joinpath(*found.file.strip("/").split("/")).read_bytes()
        tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = [("ETag", tag), ("Content-Type", _content_type(found.file)),
                   ("Cache-Control", CACHE_CONTROL)]  # fmt: skip
        if request_headers.get("if-none-match", "") in (tag, f"W/{tag}"):
            return self._finish(AssetResponse(304, headers), path, host, https)
        return self._finish(
            AssetResponse(found.status, headers, b"" if method == "HEAD" else body),
            path,
            host,
            https,
        )

    def _finish(self, response: AssetResponse, path: str, host: str, https: bool) -> AssetResponse:
        headers = apply(self._rules(), path, host, response.headers)
        if not https:
            headers = [(k, v) for k, v in headers if k.lower() != "strict-transport-security"]
        return AssetResponse(response.status, headers, response.body)


def _content_type(file: str) -> str:
    suffix = Path(file).suffix.lower()
    kind = TYPES.get(suffix) or mimetypes.guess_type(file)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith(TEXT) else kind
