from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import JWT_SECRET, PROBE_DIR, ROOT, DevServer, write_dev_vars


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[Callable[..., DevServer]]:
    """Factory: a running `apiary dev` for the real worker (default) or the probe worker."""
    servers: list[DevServer] = []

    def start(*, probe: bool = False, args: tuple[str, ...] = (), **dev_vars: str) -> DevServer:
        project = tmp_path / f"project{len(servers)}"
        project.mkdir()
        if probe:
            config = project / "wrangler.toml"
            text = (PROBE_DIR / "wrangler.toml").read_text().replace("../../../", f"{ROOT}/")
            config.write_text(text)
            server = DevServer(
                tmp_path / f"state{len(servers)}",
                config=config,
                worker="probe_worker:WORKER",
                pythonpath=PROBE_DIR,
                args=args,
            )
        else:
            config = project / "wrangler.toml"
            text = (ROOT / "wrangler.toml").read_text()
            text = text.replace('main = "src/entry.py"', f'main = "{ROOT}/src/entry.py"')
            text = text.replace(
                'migrations_dir = "migrations"', f'migrations_dir = "{ROOT}/migrations"'
            )
            config.write_text(text)
            server = DevServer(tmp_path / f"state{len(servers)}", config=config, args=args)
        write_dev_vars(project, **({"JWT_SECRET": JWT_SECRET} | dev_vars))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
