"""install()/uninstall() leave sys.modules as they found it (no fixture: this drives them)."""

import sys

import jsfake
import pytest

_OWNED = ("js", "pyodide", "_pyodide_entrypoint_helper", "_cloudflare_compat_flags", "workers")


def _leftovers() -> list[str]:
    return [
        name
        for name in sys.modules
        if name == "asgi" or any(name == p or name.startswith(p + ".") for p in _OWNED)
    ]


def test_install_then_uninstall_removes_the_fake_and_the_sdk():
    assert _leftovers() == []
    js = jsfake.install(compat_flags={"python_request_headers_preserve_commas": True})
    try:
        import _cloudflare_compat_flags
        import asgi  # noqa: F401
        import workers

        assert sys.modules["js"] is js
        assert _cloudflare_compat_flags.python_request_headers_preserve_commas is True
        assert _cloudflare_compat_flags.some_future_flag is False
    finally:
        jsfake.uninstall()
    assert _leftovers() == []
    with pytest.raises(ImportError):
        import workers  # noqa: F401 - the real SDK cannot load without the JS layer
    jsfake.uninstall()
    assert _leftovers() == []


def test_uninstall_also_removes_named_packages():
    jsfake.install()
    sys.modules["apiary_fake_entry"] = type(sys)("apiary_fake_entry")
    jsfake.uninstall(also_remove=["apiary_fake_entry"])
    assert "apiary_fake_entry" not in sys.modules
