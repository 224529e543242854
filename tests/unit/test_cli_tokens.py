"""Every CLI command that needs a token reads it from the environment or a private file."""

from pathlib import Path

import pytest

from apiary_local import device_agent


def test_a_device_join_without_an_invite_token_says_where_to_put_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("APIARY_INVITE_TOKEN", raising=False)
    with pytest.raises(SystemExit, match="set APIARY_INVITE_TOKEN or pass a token file"):
        device_agent.main(["join", "http://127.0.0.1:9", "--swarm", "swm_x"])


def test_a_device_join_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    token_file = tmp_path / "invite"
    token_file.write_text("inv_secret\n")
    token_file.chmod(0o644)
    with pytest.raises(SystemExit, match="chmod 600"):
        device_agent.main(
            ["join", "http://127.0.0.1:9", "--swarm", "swm_x", "--token-file", str(token_file)]
        )


def test_the_invite_token_is_no_longer_an_argument() -> None:
    with pytest.raises(SystemExit) as refused:
        device_agent.main(["join", "http://127.0.0.1:9", "--swarm", "swm_x", "--token", "t"])
    assert refused.value.code == 2  # argparse: unrecognized arguments
