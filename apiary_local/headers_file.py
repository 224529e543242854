"""The `_headers` file of Workers Static Assets, parsed and matched as Cloudflare does.

https://developers.cloudflare.com/workers/static-assets/headers/ : blocks of a URL pattern
line and indented `Name: value` lines (`! Name` detaches a header); `#` comments; a pattern
may hold one splat `*` (greedy) and `:placeholder`s (one path segment), usable in values as
`:splat` and `:name`; an absolute `https://host/path` pattern also matches the host (port and
scheme ignored). Every matching rule applies, in file order: a header set by two rules is
joined with a comma, and `!` removes one set by an earlier rule or by default. Limits: 100
rules, 2,000 characters a line. The rules apply to asset responses only, never to the Worker's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_RULES = 100
MAX_LINE = 2000


class HeadersFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str
    host: str | None
    regex: re.Pattern[str]
    set: tuple[tuple[str, str], ...] = ()
    unset: tuple[str, ...] = ()


@dataclass
class _Block:
    pattern: str
    set: list[tuple[str, str]] = field(default_factory=list)
    unset: list[str] = field(default_factory=list)


def _compile(path: str) -> re.Pattern[str]:
    if path.count("*") > 1:
        raise HeadersFileError(f"{path}: at most one splat (*) per pattern")
    out, i = [], 0
    for match in re.finditer(r"\*|:([A-Za-z]\w*)", path):
        out.append(re.escape(path[i : match.start()]))
        out.append("(?P<splat>.*)" if match.group(0) == "*" else f"(?P<{match.group(1)}>[^/]+)")
        i = match.end()
    out.append(re.escape(path[i:]))
    return re.compile("^" + "".join(out) + "$")


def _rule(block: _Block) -> Rule:
    host, path = None, block.pattern
    if block.pattern.startswith("https://") or block.pattern.startswith("http://"):
        parts = urlsplit(block.pattern)
        host, path = parts.hostname, parts.path or "/"
    if not path.startswith("/"):
        raise HeadersFileError(f"{block.pattern}: a pattern is a path or an https:// URL")
    return Rule(block.pattern, host, _compile(path), tuple(block.set), tuple(block.unset))


def parse(text: str) -> list[Rule]:
    blocks: list[_Block] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if len(raw) > MAX_LINE:
            raise HeadersFileError(f"line {number}: over {MAX_LINE} characters")
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if raw[0] not in " \t":
            blocks.append(_Block(line))
            continue
        if not blocks:
            raise HeadersFileError(f"line {number}: a header before any URL pattern")
        if line.startswith("!"):
            blocks[-1].unset.append(line[1:].strip().lower())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise HeadersFileError(f"line {number}: expected `Name: value`")
        blocks[-1].set.append((name.strip(), value.strip()))
    if len(blocks) > MAX_RULES:
        raise HeadersFileError(f"at most {MAX_RULES} rules")
    return [_rule(block) for block in blocks]


def _substitute(value: str, groups: dict[str, str]) -> str:
    for name, replacement in groups.items():
        value = value.replace(f":{name}", replacement or "")
    return value


def apply(
    rules: list[Rule], path: str, host: str, headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """`headers` (the defaults) with every matching rule applied, as the asset worker does."""
    result = list(headers)
    seen: set[str] = set()  # names set by a rule so far: a second rule appends
    for rule in rules:
        if rule.host is not None and rule.host.lower() != host.lower():
            continue
        found = rule.regex.match(path)
        if found is None:
            continue
        groups = {k: v for k, v in found.groupdict().items() if v is not None}
        for name in rule.unset:
            result = [(k, v) for k, v in result if k.lower() != name]
        for name, value in rule.set:
            value = _substitute(value, groups)
            if name.lower() in seen:
                result.append((name, value))
            else:
                result = [(k, v) for k, v in result if k.lower() != name.lower()]
                result.append((name, value))
                seen.add(name.lower())
    return _joined(result)


def _joined(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers set twice by rules travel joined with a comma (one line per name)."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), (name, []))[1].append(value)
    return [(name, ", ".join(values)) for name, values in merged.values()]
