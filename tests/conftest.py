from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import (
    JWT_SECRET,
    PROBE_DIR,
    ROOT,
    Backend,
    DevServer,
    Tls,
    project_config,
    write_dev_vars,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[Callable[..., DevServer]]:
    """Factory: a running `apiary dev` for the real worker (default), the probe worker, or
    another worker module (`worker="module:WORKER"`, found on `pythonpath`)."""
    servers: list[DevServer] = []

    def start(
        *,
        probe: bool = False,
        worker: str = "worker:WORKER",
        pythonpath: Path | None = None,
        args: tuple[str, ...] = (),
        tls: Tls | None = None,
        env: dict[str, str] | None = None,
        **dev_vars: str,
    ) -> DevServer:
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
            config = project_config(project)
            server = DevServer(
                tmp_path / f"state{len(servers)}",
                config=config,
                worker=worker,
                pythonpath=pythonpath,
                args=args,
                tls=tls,
                env=env,
            )
        defaults = {"JWT_SECRET": JWT_SECRET, "PUBLIC_URL": server.url}
        # "{url}" in a value is this server's own URL (known only once its port is chosen).
        values = {k: v.replace("{url}", server.url) for k, v in (defaults | dev_vars).items()}
        write_dev_vars(project, **values)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    """Factory: a running reference backend, registered with the given apiary."""
    backends: list[Backend] = []

    def start(apiary: DevServer, *args: str, name: str | None = None) -> Backend:
        backend = Backend(apiary, name or f"b{len(backends)}", tmp_path, args)
        backends.append(backend)
        return backend.start()

    yield start
    for backend in backends:
        backend.kill()
