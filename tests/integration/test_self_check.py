"""★ apiary checks itself: the shipped `apiary-self` suite (smoke, auth, security_session)
against the dashboard of a real `apiary dev` served over https (its own CA and certificate, so
the Secure cookie and HSTS are what the checks see), with `apiary browser-runner` and the
Browser Rendering REST subset on real Chromium."""

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from apiary_local import self_check
from tests.harness import APIARY, DevServer, Tls, admin_token, free_port, make_tls, wait_up

pytestmark = pytest.mark.slow
RUNNER_TOKEN = "runner-token-self-check-0123456789"


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


@pytest.fixture
def runner(tls: Tls) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "BROWSER_RUNNER_TOKEN": RUNNER_TOKEN,
        "APIARY_BROWSER_TRUST_SPKI": tls.spki,
        "EGRESS_ALLOW": "loopback",  # the dashboard under test is on loopback
    }
    process = subprocess.Popen(
        [str(APIARY), "browser-runner", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    wait_up(f"http://127.0.0.1:{port}/health", timeout_s=30)
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGKILL)
    process.wait(10)


@pytest.mark.timeout(240)
def test_the_apiary_self_suite_passes_against_the_dashboard(
    dev_server: Callable[..., DevServer], runner: str, tls: Tls
) -> None:
    token = admin_token(("browser_tests:read",))
    # "{url}" becomes this server's own origin: the credential may be typed there only.
    credentials = {"apiary-self": {"username": "tests", "password": token, "origins": ["{url}"]}}
    server = dev_server(
        args=("--no-cron",),
        tls=tls,
        env={"SSL_CERT_FILE": str(tls.ca), "APIARY_BROWSER_TRUST_SPKI": tls.spki},
        CF_API_BASE="{url}/client/v4",
        CF_ACCOUNT_ID="local",
        CF_API_TOKEN="local-browser-token-0123456789",
        BROWSER_RUNNER_URL=runner,
        BROWSER_RUNNER_TOKEN=RUNNER_TOKEN,
        BROWSER_CREDENTIALS=json.dumps(credentials),
    )
    headers = {"Authorization": f"Bearer {admin_token()}"}
    with httpx.Client(headers=headers, timeout=30, verify=server.verify) as client:
        self_check.install(client, server.url)
        suites = client.get(f"{server.url}/api/browser_tests/suites").json()["suites"]
        assert [s["name"] for s in suites] == ["apiary-self"]
        record = self_check.run(client, server.url, timeout_s=180)
    verdicts = {
        child["test_type"]: {a["name"]: a["passed"] for a in child["assertions"]}
        for child in record["children"]
    }
    assert record["status"] == "passed", json.dumps(record["children"], indent=1)[:6000]
    assert set(verdicts) == {"smoke", "auth", "security_session"}
    security = verdicts["security_session"]
    for name in ("HSTS", "Content-Security-Policy", "apiary_session Secure",
                 "apiary_session HttpOnly", "apiary_session refused after logout"):  # fmt: skip
        assert security[name], name
    assert token not in server.log()
