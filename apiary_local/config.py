"""What `apiary dev` reads: `wrangler.toml` (one environment of it) and `.dev.vars`.

The same files wrangler reads, with wrangler's rules: an `[env.NAME]` block does not inherit
bindings, vars or triggers from the top level; `.dev.vars.NAME` wins over `.dev.vars`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast


class ConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class D1Binding:
    binding: str
    database_name: str
    migrations_dir: Path


@dataclass(frozen=True, slots=True)
class ObjectBinding:
    name: str
    class_name: str


@dataclass(frozen=True, slots=True)
class BucketBinding:
    binding: str
    bucket_name: str


HTML_HANDLING = ("auto-trailing-slash", "none")  # what apiary dev implements
NOT_FOUND_HANDLING = ("single-page-application", "404-page", "none")


@dataclass(frozen=True, slots=True)
class AssetsConfig:
    """`[assets]`: Workers Static Assets (served by `apiary_local.assets` locally)."""

    directory: Path
    binding: str | None = None
    html_handling: str = "auto-trailing-slash"
    not_found_handling: str = "none"
    run_worker_first: bool | tuple[str, ...] = False


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    name: str
    environment: str | None
    main: Path
    vars: dict[str, str]
    secrets: dict[str, str]
    d1: list[D1Binding]
    durable_objects: list[ObjectBinding]
    crons: list[str]
    sqlite_classes: frozenset[str] = field(default_factory=frozenset)
    buckets: list[BucketBinding] = field(default_factory=list)
    assets: AssetsConfig | None = None

    @property
    def src_dir(self) -> Path:
        return self.main.parent


# dotenv's own LINE pattern (the `dotenv` package wrangler bundles), so a `.dev.vars` means
# here what it means to `wrangler dev`: `KEY="{"a": 1}"` is the JSON inside the quotes.
_DOTENV_LINE = re.compile(
    r"""(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)""",
    re.MULTILINE | re.ASCII,
)
_DOTENV_QUOTES = re.compile(r"^(['\"`])([\s\S]*)\1$", re.MULTILINE)


def parse_dev_vars(text: str) -> dict[str, str]:
    """dotenv's parse, as wrangler calls it; stricter in one way: text that no KEY=VALUE
    covers (dotenv skips it silently) is an error naming its line."""
    text = re.sub(r"\r\n?", "\n", text)
    values: dict[str, str] = {}
    covered = 0
    for match in _DOTENV_LINE.finditer(text):
        _reject_stray(text, covered, match.start())
        covered = match.end()
        value = (match[2] or "").strip()
        quote = value[:1]
        value = _DOTENV_QUOTES.sub(r"\2", value)
        if quote == '"':
            value = value.replace("\\n", "\n").replace("\\r", "\r")
        values[match[1]] = value
    _reject_stray(text, covered, len(text))
    return values


def _reject_stray(text: str, start: int, end: int) -> None:
    for offset, line in enumerate(text[start:end].split("\n")):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            number = text.count("\n", 0, start) + offset + 1
            raise ConfigError(f".dev.vars line {number}: expected KEY=VALUE")


def _section(document: dict[str, Any], environment: str | None) -> dict[str, Any]:
    if environment is None:
        return document
    envs = document.get("env", {})
    if environment not in envs:
        known = ", ".join(sorted(envs)) or "none"
        raise ConfigError(f"no [env.{environment}] in wrangler.toml (environments: {known})")
    return cast(dict[str, Any], envs[environment])  # a TOML table


def _assets(section: dict[str, Any], root: Path) -> AssetsConfig | None:
    """`[assets]` as wrangler reads it: the environment's own block, else the top level's
    (it is one of wrangler's inheritable keys)."""
    entry = section.get("assets")
    if entry is None:
        return None
    if "directory" not in entry:
        raise ConfigError("[assets] needs a directory")
    html = entry.get("html_handling", "auto-trailing-slash")
    not_found = entry.get("not_found_handling", "none")
    if html not in HTML_HANDLING:
        raise ConfigError(f"assets.html_handling {html!r}: apiary dev supports {HTML_HANDLING}")
    if not_found not in NOT_FOUND_HANDLING:
        raise ConfigError(f"assets.not_found_handling {not_found!r} is not one of wrangler's")
    first = entry.get("run_worker_first", False)
    if not isinstance(first, bool):
        if not isinstance(first, list) or not all(isinstance(p, str) for p in first):
            raise ConfigError("assets.run_worker_first must be a boolean or a list of patterns")
        first = tuple(first)
    return AssetsConfig(
        directory=(root / entry["directory"]).resolve(),
        binding=entry.get("binding"),
        html_handling=html,
        not_found_handling=not_found,
        run_worker_first=first,
    )


def load(path: Path, environment: str | None = None) -> WorkerConfig:
    path = path.resolve()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    root = path.parent
    section = _section(document, environment)
    main = document.get("main")
    if not main:
        raise ConfigError("wrangler.toml has no `main`")
    d1 = [
        D1Binding(
            binding=entry["binding"],
            database_name=entry.get("database_name", entry["binding"]),
            migrations_dir=(root / entry.get("migrations_dir", "migrations")).resolve(),
        )
        for entry in section.get("d1_databases", [])
    ]
    objects = [
        ObjectBinding(entry["name"], entry["class_name"])
        for entry in section.get("durable_objects", {}).get("bindings", [])
    ]
    sqlite_classes = frozenset(
        name
        for migration in document.get("migrations", [])
        for name in migration.get("new_sqlite_classes", [])
    )
    dev_vars = root / f".dev.vars.{environment}" if environment else None
    if dev_vars is None or not dev_vars.exists():
        dev_vars = root / ".dev.vars"
    secrets = parse_dev_vars(dev_vars.read_text()) if dev_vars.exists() else {}
    name = section.get("name") or document.get("name", "worker")
    return WorkerConfig(
        name=name,
        environment=environment,
        main=(root / main).resolve(),
        vars={k: str(v) for k, v in section.get("vars", {}).items()},
        secrets=secrets,
        d1=d1,
        durable_objects=objects,
        crons=list(section.get("triggers", {}).get("crons", [])),
        sqlite_classes=sqlite_classes,
        buckets=[
            BucketBinding(entry["binding"], entry.get("bucket_name", entry["binding"]))
            for entry in section.get("r2_buckets", [])
        ],
        assets=_assets(section if "assets" in section else document, root),
    )
