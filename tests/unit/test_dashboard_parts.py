"""The dashboard's pure parts: `_headers` rules, static-asset routing, the one security-header
policy, ETags, session cookies and CSRF, watcher admission rules, the shipped suite."""

from pathlib import Path

import pytest

from api.etag import etag_of, matches
from api.overview import latest_failures
from api.security_headers import PAGE_HEADERS, headers_for
from apiary_local.assets import StaticAssets
from apiary_local.cli import sign_in_link
from apiary_local.config import AssetsConfig
from apiary_local.headers_file import HeadersFileError, apply, parse
from auth import sessions
from browser.models import SuiteIn
from browser.suites import apiary_self
from swarms.watchers import same_site

ROOT = Path(__file__).resolve().parents[2]


def test_headers_rules_match_splats_placeholders_detach_and_join() -> None:
    rules = parse(
        "# comment\n/*\n  X-A: one\n  X-Frame-Options: DENY\n/docs/:page\n  X-Page: :page\n"
        "/static/*\n  X-A: two\n  ! X-Frame-Options\n  X-Splat: :splat\n"
        "https://other.example/*\n  X-Host: yes\n"
    )
    got = dict(apply(rules, "/static/js/a.js", "127.0.0.1", [("ETag", '"x"')]))
    assert got == {"ETag": '"x"', "X-A": "one, two", "X-Splat": "js/a.js"}
    assert dict(apply(rules, "/docs/intro", "h", []))["X-Page"] == "intro"
    assert "X-Host" in dict(apply(rules, "/", "other.example", []))
    assert "X-Host" not in dict(apply(rules, "/", "127.0.0.1", []))


def test_headers_file_errors() -> None:
    with pytest.raises(HeadersFileError):
        parse("  X-A: before any pattern\n")
    with pytest.raises(HeadersFileError):
        parse("/a/*/b/*\n  X-A: 1\n")


def test_the_headers_file_says_exactly_the_policy() -> None:
    rules = parse((ROOT / "public" / "_headers").read_text())
    assert dict(apply(rules, "/", "apiary.example", [])) == headers_for(https=True)
    assert "unsafe-inline" not in PAGE_HEADERS["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in PAGE_HEADERS["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in headers_for(https=False)


@pytest.fixture
def site(tmp_path: Path) -> StaticAssets:
    for name, text in {
        "index.html": "home", "file.html": "file", "folder/index.html": "folder",
        "js/app.js": "js", "_headers": "/*\n  X-Test: 1\n  Strict-Transport-Security: max-age=1\n",
    }.items():  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    config = AssetsConfig(
        directory=tmp_path,
        not_found_handling="single-page-application",
        run_worker_first=("/api/*", "/health", "!/api/public/*"),
    )
    return StaticAssets(config)


@pytest.mark.parametrize(
    ("path", "status", "where"),
    [
        ("/", 200, "home"), ("/index.html", 307, "/"), ("/file", 200, "file"),
        ("/file.html", 307, "/file"), ("/file/", 307, "/file"), ("/folder", 307, "/folder/"),
        ("/folder/", 200, "folder"), ("/folder/index.html", 307, "/folder/"),
        ("/js/app.js", 200, "js"), ("/swarms/swm_1", 200, "home"), ("/_headers", 200, "home"),
        ("/api/public/x", 200, "home"),
    ],
)  # fmt: skip
def test_asset_routing_follows_cloudflare(
    site: StaticAssets, path: str, status: int, where: str
) -> None:
    response = site.respond("GET", path, {"host": "h"}, https=False)
    assert response is not None
    assert response.status == status
    headers = dict(response.headers)
    assert (headers["Location"] if status == 307 else response.body.decode()) == where
    assert headers["X-Test"] == "1"
    assert "Strict-Transport-Security" not in headers  # never on plain http


def test_worker_paths_methods_and_revalidation(site: StaticAssets) -> None:
    assert site.respond("GET", "/api/swarms", {}, https=False) is None
    assert site.respond("GET", "/health", {}, https=False) is None
    assert site.respond("POST", "/", {}, https=False).status == 405
    first = site.respond("GET", "/js/app.js", {}, https=True)
    tag = dict(first.headers)["ETag"]
    again = site.respond("GET", "/js/app.js", {"if-none-match": tag}, https=True)
    assert again.status == 304
    assert dict(again.headers)["Strict-Transport-Security"] == "max-age=1"


def test_without_patterns_only_navigations_fall_back_to_the_app(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("home")
    assets = StaticAssets(AssetsConfig(tmp_path, not_found_handling="single-page-application"))
    navigate = {"sec-fetch-mode": "navigate"}
    assert assets.respond("GET", "/x", navigate, https=False).status == 200
    assert assets.respond("GET", "/x", {"sec-fetch-mode": "cors"}, https=False) is None


def test_etags() -> None:
    tag = etag_of(b"{}")
    assert matches(tag, tag)
    assert matches(f'W/{tag}, "other"', tag)
    assert matches("*", tag)
    assert not matches('"other"', tag)
    assert not matches(None, tag)


def test_session_cookie_and_csrf() -> None:
    value = sessions.new_value()
    header = sessions.set_cookie(value, max_age_s=60, secure=True)
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert "Secure" in header
    assert "Secure" not in sessions.set_cookie(value, max_age_s=60, secure=False)
    assert sessions.cookie_value(f"a=b; apiary_session={value}") == value
    assert sessions.cookie_value("a=b") is None
    token = sessions.csrf_token("secret", value)
    assert sessions.csrf_matches("secret", value, token)
    assert not sessions.csrf_matches("secret", sessions.new_value(), token)
    assert not sessions.csrf_matches("secret", value, None)
    assert sessions.digest(value) != value


def test_watchers_must_come_from_the_swarms_own_site() -> None:
    assert same_site("https://apiary.example", "wss://apiary.example/api/swarms/x/ws")
    assert same_site("http://127.0.0.1:8787", "ws://127.0.0.1:8787/api/swarms/x/ws")
    assert not same_site("https://evil.example", "wss://apiary.example/api/swarms/x/ws")
    assert not same_site(None, "wss://apiary.example/")


def test_the_shipped_suite_is_a_valid_suite() -> None:
    suite = SuiteIn.model_validate(apiary_self("https://apiary.example/"))
    assert [t.test_type for t in suite.tests] == ["smoke", "auth", "security_session"]
    assert all(str(t.target_url).startswith("https://apiary.example/") for t in suite.tests)


def test_failures_are_newest_first_across_kinds() -> None:
    sections = {
        "tasks": {"failures": [{"id": "t", "at": "2026-01-02T00:00:00Z"}]},
        "cron": {"failures": [{"id": "c", "at": "2026-01-03T00:00:00Z"}]},
        "swarms": {"hidden": "requires scope swarms:admin"},
    }
    assert [(f["kind"], f["id"]) for f in latest_failures(sections)] == [
        ("cron", "c"),
        ("tasks", "t"),
    ]


def test_the_sign_in_link_keeps_the_token_in_the_fragment() -> None:
    link = sign_in_link("https://apiary.example/", "a.b.c")
    assert link == "https://apiary.example/signin#token=a.b.c"
