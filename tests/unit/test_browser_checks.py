"""Browser check rules: options validated at the edge, assertions as pure functions."""

import pytest
from pydantic import ValidationError

from browser import checks
from browser.models import BrowserTestIn

PAGE = "<html><head><title> Fixture  Home </title><script>var x = 'hidden';</script></head>" \
       "<body><h1>Hello</h1><p>Welcome to the fixture</p></body></html>"  # fmt: skip


def test_title_and_text() -> None:
    assert checks.title_of(PAGE) == "Fixture Home"
    assert checks.title_of("<p>no title</p>") == ""
    assert checks.text_of(PAGE) == "Fixture Home Hello Welcome to the fixture"


def test_smoke_assertions() -> None:
    options = {"required_text": ["Welcome", "Missing"], "required_selectors": ["h1", "#x"],
               "max_load_ms": 500}  # fmt: skip
    found = checks.smoke(options, status=200, html=PAGE, found={"h1": 1}, load_ms=600,
                         console_errors=["boom"])  # fmt: skip
    assert {a["name"]: a["passed"] for a in found} == {
        "status is 2xx": True,
        "title is not empty": True,
        "text: Welcome": True,
        "text: Missing": False,
        "selector: h1": True,
        "selector: #x": False,
        "no console errors": False,
        "load time": False,
    }
    assert checks.verdict(found) == "failed"
    clean = checks.smoke({}, status=204, html=PAGE, found={}, load_ms=10, console_errors=None)
    assert checks.verdict(clean) == "passed"
    assert "no console errors" not in {a["name"] for a in clean}  # no step runner: not judged


def test_journey_steps_report_each_step() -> None:
    planned = [
        {"action": "goto", "url": "http://x/"},
        {"action": "click", "selector": "#next"},
        {"action": "expect_text", "text": "Done"},
    ]
    run = {
        "steps": [
            {"index": 0, "action": "goto", "ok": True, "actual": None},
            {"index": 1, "action": "click", "ok": False, "error": "no #next"},
        ]
    }
    found = checks.steps(run, planned)
    assert [(a["name"], a["passed"], a["actual"]) for a in found] == [
        ("1. goto http://x/", True, "ok"),
        ("2. click #next", False, "no #next"),
        ("3. expect_text Done", False, "not reached"),
    ]


@pytest.mark.parametrize(
    ("headers", "passed"),
    [
        (
            {"Strict-Transport-Security": "max-age=31536000", "Content-Security-Policy":
             "default-src 'self'", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"},
            [True, True, True, True],
        ),
        ({"Content-Security-Policy": "frame-ancestors 'none'"}, [False, True, False, True]),
        ({}, [False, False, False, False]),
    ],
)  # fmt: skip
def test_security_headers(headers: dict, passed: list[bool]) -> None:
    assert [a["passed"] for a in checks.headers(headers)] == passed


def test_cookie_flags_and_session_lifecycle() -> None:
    good = {"name": "sid", "secure": True, "httpOnly": True, "sameSite": "Lax"}
    weak = {"name": "sid", "secure": False, "httpOnly": False, "sameSite": "None"}
    assert all(a["passed"] for a in checks.cookie_flags(good, "sid"))
    assert not any(a["passed"] for a in checks.cookie_flags(weak, "sid"))
    assert [a["passed"] for a in checks.cookie_flags(None, "sid")] == [False]
    rotated = checks.session_lifecycle("sid", "a", "b", logged_in=True, reused_works=False)
    assert checks.verdict(rotated) == "passed"
    fixed = checks.session_lifecycle("sid", "a", "a", logged_in=True, reused_works=True)
    assert [a["passed"] for a in fixed] == [True, False, False]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"test_type": "smoke", "target_url": "not a url"}, "target_url"),
        ({"test_type": "nope", "target_url": "http://x.test/"}, "test_type"),
        ({"test_type": "smoke", "target_url": "http://x.test/", "options": {"bogus": 1}}, "bogus"),
        ({"test_type": "auth", "target_url": "http://x.test/", "options": {"credentials": "a"}},
         "expect_selector"),
        ({"test_type": "user_journey", "target_url": "http://x.test/",
          "options": {"steps": [{"action": "fill", "selector": "#a"}]}}, "exactly one"),
        ({"test_type": "user_journey", "target_url": "http://x.test/",
          "options": {"steps": [{"action": "goto"}]}}, "goto needs url"),
        ({"test_type": "security_session", "target_url": "http://x.test/",
          "options": {"login": {"credentials": "a"}}}, "logged_in_selector"),
    ],
)  # fmt: skip
def test_bad_options_are_refused(body: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        BrowserTestIn.model_validate(body)


def test_options_are_normalised() -> None:
    run = BrowserTestIn.model_validate(
        {"test_type": "smoke", "target_url": "http://x.test/", "options": {"required_text": ["a"]}}
    )
    assert run.options == {"required_text": ["a"], "required_selectors": [], "max_load_ms": 10000}
