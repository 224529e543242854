"""What `src/` may import: the Workers runtime's packages, a short list of vendored pure-Python
packages, and platform modules only at the edge."""

import ast
import importlib
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
RUNTIME_PACKAGES = {"fastapi", "pydantic", "starlette", "httpx"}
# Small pure-Python packages pywrangler vendors, by import name and distribution: an explicit,
# short list (each must be pure Python: Pyodide cannot load a compiled wheel built for CPython).
VENDORED = {"jwt": "PyJWT"}
# The SDK is vendored too, pinned: production must load the version the Cloudflare tests use.
PINNED = {
    "fastapi==0.116.1",
    "pydantic==2.10.6",
    "starlette==0.47.2",
    "httpx==0.28.1",
    "workers-runtime-sdk==1.9.5",
    "pyjwt==2.15.1",
}
PLATFORM_ONLY = {"js", "pyodide", "workers", "asgi"}
FIRST_PARTY = {p.stem for p in SRC.glob("*.py")} | {p.name for p in SRC.iterdir() if p.is_dir()}


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def at_the_edge(path: Path) -> bool:
    relative = path.relative_to(SRC)
    return relative == Path("entry.py") or relative.parts[0] == "cloudflare_adapters"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_what_the_workers_runtime_ships(path: Path) -> None:
    names = imported(path) - set(sys.stdlib_module_names) - FIRST_PARTY
    platform = names & PLATFORM_ONLY
    if platform:
        assert at_the_edge(path), f"{platform} imported outside the Cloudflare adapter"
    outside = names - PLATFORM_ONLY - RUNTIME_PACKAGES - set(VENDORED)
    assert not outside, f"not shipped by the Workers runtime nor vendored: {sorted(outside)}"


@pytest.mark.parametrize("distribution", sorted(VENDORED.values()))
def test_vendored_packages_are_pure_python(distribution: str) -> None:
    files = importlib.metadata.files(distribution) or []
    compiled = [str(f) for f in files if f.suffix in (".so", ".pyd", ".dylib", ".dll")]
    assert files
    assert not compiled
    wheel = importlib.metadata.distribution(distribution).read_text("WHEEL") or ""
    assert "Root-Is-Purelib: true" in wheel
    assert "Tag: py3-none-any" in wheel or "Tag: py2.py3-none-any" in wheel


def test_core_modules_import_on_cpython() -> None:
    for path in modules():
        if path.relative_to(SRC) == Path("entry.py"):
            continue  # imports `workers` at module level: tested against the SDK
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        importlib.import_module(module)
    assert "js" not in sys.modules


def test_runtime_dependencies_are_pinned_to_the_workers_set() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(project["dependencies"]) == PINNED


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import js\nimport requests\nfrom pyodide.ffi import to_js\n")
    assert imported(bad) == {"js", "requests", "pyodide"}


def test_the_runtime_loads_the_vendored_sdk_and_its_patches() -> None:
    """Without these flags at our compatibility date, the runtime installs its own older SDK
    (no binding wrappers: D1, R2 and storage reach Python as raw JS objects) and skips the SDK's
    .pth patches."""
    flags = tomllib.loads((ROOT / "wrangler.toml").read_text())["compatibility_flags"]
    assert {"python_workers", "enable_python_external_sdk", "python_process_pth_files"} <= set(
        flags
    )
