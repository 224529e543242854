"""`apiary check-deployed` against a real `apiary dev` and a reference backend, as a user runs
it after a first deploy (here the "deployed" Worker is the local one)."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.harness import APIARY, admin_token

pytestmark = pytest.mark.slow


def check(url: str, *args: str, token: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APIARY_TOKEN": token}
    return subprocess.run(
        [str(APIARY), "check-deployed", url, "--timeout-s", "30", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


def verdicts(output: str) -> dict[str, str]:
    return {line.split()[1]: line.split()[0] for line in output.splitlines() if line.strip()}


def test_every_check_passes_against_a_working_deploy(dev_server, backend, tmp_path: Path) -> None:
    server = dev_server()
    ref = backend(server)
    done = check(server.url, "--backend", ref.url, token=admin_token(), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert verdicts(done.stdout) == {
        "health": "PASS",
        "auth": "PASS",
        "task": "PASS",
        "swarm": "PASS",
        "trigger": "PASS",
    }
    assert "close 1000" in done.stdout
    assert "succeeded on srv_" in done.stdout


def test_a_bad_token_fails_and_is_never_printed(dev_server, tmp_path: Path) -> None:
    server = dev_server()
    token = admin_token().replace(".", ".x", 1)  # a broken signature segment
    done = check(server.url, token=token, tmp_path=tmp_path)
    assert done.returncode == 1
    found = verdicts(done.stdout)
    assert found["health"] == "PASS"
    assert found["task"] == "SKIP"
    assert {found["auth"], found["swarm"], found["trigger"]} == {"FAIL"}
    assert token not in done.stdout + done.stderr


def test_the_token_comes_from_the_environment_or_a_private_file(dev_server, tmp_path: Path) -> None:
    server = dev_server()
    env = {k: v for k, v in os.environ.items() if k != "APIARY_TOKEN"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(APIARY), "check-deployed", server.url, *args]
        return subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=120, check=False
        )

    missing = run()
    assert missing.returncode != 0
    assert "APIARY_TOKEN" in missing.stderr
    token_file = tmp_path / "token"
    token_file.write_text(admin_token() + "\n")
    token_file.chmod(0o644)
    assert "chmod 600" in run("--token-file", str(token_file)).stderr
    token_file.chmod(0o600)
    done = run("--token-file", str(token_file))
    assert verdicts(done.stdout)["auth"] == "PASS", done.stdout + done.stderr
