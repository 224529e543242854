"""Shipped browser-check suites, as data. `apiary-self`: apiary checks its own dashboard.

- smoke: the sign-in page loads with its form, a title and no console error, quickly;
- auth: signing in through that form (subject as the username, the token as the password,
  from the `BROWSER_CREDENTIALS` entry named `credentials`) reaches a signed-in page and sets
  the session cookie;
- security_session: every page's security headers, the session cookie's flags (Secure,
  HttpOnly, SameSite), a new cookie at sign-in, and the old one refused after sign-out.

The suite is built for one dashboard origin; install it with `apiary self-check install`
(which posts it to `POST /api/browser_tests/suites`) and run it like any suite.
"""

from typing import Any

SELF_SUITE = "apiary-self"
SESSION_COOKIE = "apiary_session"  # auth.sessions.COOKIE (kept literal: this module is data)


def _login(origin: str, credentials: str) -> dict[str, Any]:
    return {
        "credentials": credentials,
        "login_url": f"{origin}/signin",
        "username_selector": "#subject",
        "password_selector": "#token",
        "submit_selector": "#submit",
    }


def apiary_self(origin: str, *, credentials: str = SELF_SUITE) -> dict[str, Any]:
    """The `apiary-self` suite (a `SuiteIn` body) for the dashboard at `origin`."""
    origin = origin.rstrip("/")
    login = _login(origin, credentials)
    return {
        "name": SELF_SUITE,
        "description": f"apiary checks its own dashboard at {origin}",
        "tests": [
            {
                "test_type": "smoke",
                "target_url": f"{origin}/signin",
                "options": {
                    "required_text": ["Sign in to apiary"],
                    "required_selectors": ["#token", "#submit"],
                    "max_load_ms": 10_000,
                },
            },
            {
                "test_type": "auth",
                "target_url": f"{origin}/signin",
                "options": {
                    **login,
                    "expect_selector": "#signed-in-as",
                    "expect_cookie": SESSION_COOKIE,
                },
            },
            {
                "test_type": "security_session",
                "target_url": f"{origin}/",
                "options": {
                    "session_cookie": SESSION_COOKIE,
                    "login": login,
                    "logged_in_selector": "#signed-in-as",
                    "protected_url": f"{origin}/",
                    "logout_url": f"{origin}/signout",
                    "logged_out_selector": "#signed-out",
                },
            },
        ],
    }
