"""Browser checks as the API accepts them: a test type, a target URL and its options.

Options are validated per type here, at the edge, so a run never starts with options it cannot
use. Credentials are never in options: `credentials` names an entry of the
`BROWSER_CREDENTIALS` secret (JSON `{name: {username, password, origins}}`), which may only be
typed into pages of its origins (`browser.credentials`).
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, model_validator

from browser.credentials import origin_of

Selector = Annotated[str, Field(min_length=1, max_length=500)]
TestType = Literal["smoke", "auth", "security_session", "user_journey"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmokeOptions(_Options):
    required_text: list[Annotated[str, Field(max_length=500)]] = Field(default=[], max_length=50)
    required_selectors: list[Selector] = Field(default=[], max_length=50)
    max_load_ms: int = Field(default=10_000, ge=100, le=120_000)


class Login(_Options):
    """How to log in: the form's selectors, and which credentials to type into it."""

    credentials: str = Field(min_length=1, max_length=100)
    login_url: HttpUrl | None = None  # default: the target URL
    username_selector: Selector = "#username"
    password_selector: Selector = "#password"
    submit_selector: Selector = "button[type=submit]"


class AuthOptions(Login):
    screenshots_after_secrets: bool = False  # a screenshot shows whatever the page shows
    expect_selector: Selector | None = None
    expect_url_contains: Annotated[str, Field(max_length=500)] | None = None
    expect_cookie: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _expects_something(self) -> "AuthOptions":
        if not (self.expect_selector or self.expect_url_contains or self.expect_cookie):
            raise ValueError("give expect_selector, expect_url_contains or expect_cookie")
        return self


class SecurityOptions(_Options):
    session_cookie: str = Field(default="session", min_length=1, max_length=200)
    login: Login | None = None
    logged_in_selector: Selector | None = None  # what only a logged-in page shows
    protected_url: HttpUrl | None = None  # where to check that an old session is refused
    logout_url: HttpUrl | None = None
    screenshots_after_secrets: bool = False
    # What the page shows once signed out: the check waits for it, so a page that signs out
    # with script (a DELETE after load) has finished before the old cookie is replayed.
    logged_out_selector: Selector | None = None

    @model_validator(mode="after")
    def _login_needs_the_rest(self) -> "SecurityOptions":
        if self.login and not (self.logged_in_selector and self.protected_url and self.logout_url):
            raise ValueError("with login, give logged_in_selector, protected_url and logout_url")
        return self


class Step(_Options):
    action: Literal[
        "goto", "click", "fill", "press", "wait_for", "expect_text", "expect_url", "screenshot"
    ]
    url: HttpUrl | None = None
    selector: Selector | None = None
    value: Annotated[str, Field(max_length=10_000)] | None = None
    secret: str | None = Field(default=None, max_length=200)  # "credentials.password"
    key: Annotated[str, Field(max_length=50)] | None = None
    text: Annotated[str, Field(max_length=1000)] | None = None
    contains: Annotated[str, Field(max_length=1000)] | None = None
    state: Literal["visible", "attached", "hidden", "detached"] | None = None
    full_page: bool = False

    @model_validator(mode="after")
    def _fields_for_action(self) -> "Step":
        needs = {
            "goto": ("url",),
            "click": ("selector",),
            "fill": ("selector",),
            "press": ("key",),
            "wait_for": ("selector",),
            "expect_text": ("text",),
            "expect_url": ("contains",),
            "screenshot": (),
        }[self.action]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.action} needs {', '.join(missing)}")
        if self.action == "fill" and (self.value is None) == (self.secret is None):
            raise ValueError("fill needs exactly one of value or secret")
        return self


class JourneyOptions(_Options):
    steps: list[Step] = Field(min_length=1, max_length=100)
    screenshots_after_secrets: bool = False


OPTIONS: dict[str, type[_Options]] = {
    "smoke": SmokeOptions,
    "auth": AuthOptions,
    "security_session": SecurityOptions,
    "user_journey": JourneyOptions,
}


class BrowserTestIn(BaseModel):
    """`target_url`, or `worker`: a managed Worker by name, checked at its URL (resolved from
    the fleet's inventory when the run starts; the run records which Worker)."""

    model_config = ConfigDict(extra="forbid")
    test_type: TestType
    target_url: HttpUrl | None = None
    worker: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _options_for_type(self) -> "BrowserTestIn":
        if (self.target_url is None) == (self.worker is None):
            raise ValueError("give exactly one of target_url or worker")
        parsed = TypeAdapter(OPTIONS[self.test_type]).validate_python(self.options)
        self.options = parsed.model_dump(mode="json", exclude_none=True)
        login = self.options.get("login")
        if self.test_type == "security_session" and login is not None:
            # The session cookie goes to these pages: they must be the login's own site.
            site = origin_of(login.get("login_url") or str(self.target_url or ""))
            for name in ("protected_url", "logout_url"):
                if origin_of(self.options[name]) != site:
                    raise ValueError(f"{name} must be on the login's origin ({site})")
        return self

    def urls(self) -> list[str]:
        """Every address this check would open (each must pass the egress policy)."""
        found = [str(self.target_url)] if self.target_url is not None else []
        options, keys = self.options, ("login_url", "protected_url", "logout_url")
        for holder in (options, options.get("login") or {}):
            found += [holder[k] for k in keys if k in holder]
        found += [step["url"] for step in options.get("steps", []) if step.get("url")]
        return found


class SuiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = Field(default="", max_length=1000)
    tests: list[BrowserTestIn] = Field(min_length=1, max_length=50)


class RunSuiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suite_name: str = Field(min_length=1, max_length=100)
