"""Runs `apiary dev` as a real subprocess on a free loopback port, for integration tests."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROBE_DIR = ROOT / "tests" / "fixtures" / "probe"
APIARY = Path(sys.executable).parent / "apiary"
JWT_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Tls:
    """A local certificate authority and a certificate for 127.0.0.1 it signed (see `make_tls`)."""

    ca: Path
    cert: Path
    key: Path
    spki: str  # base64 SHA-256 of the certificate's public key (Chromium's trust pin)


def make_tls(directory: Path) -> Tls:
    """A throwaway CA and a 127.0.0.1 certificate, with openssl (Debian ships it). Python's
    strict verification wants the CA's key usage and both key identifiers."""

    def run(*args: str) -> bytes:
        return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout

    names = ("ca.key", "ca.pem", "k.pem", "c.csr", "c.pem")
    ca_key, ca, key, csr, cert = (directory / n for n in names)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    # fmt: off
    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=apiary test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    # fmt: on
    der = run("pkey", "-in", str(key), "-pubout", "-outform", "DER")
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
    return Tls(ca, cert, key, spki)


class DevServer:
    """One `apiary dev` process; `kill()` is SIGKILL, `start()` again reuses the state dir."""

    def __init__(
        self,
        state: Path,
        *,
        config: Path,
        worker: str = "worker:WORKER",
        pythonpath: Path | None = None,
        args: tuple[str, ...] = (),
        tls: Tls | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.state = state
        self.tls = tls
        self.env = env or {}
        self.config = config
        self.worker = worker
        self.pythonpath = pythonpath
        self.args = args
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = state.parent / f"{state.name}.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.tls.ca) if self.tls else True

    def start(self, timeout_s: float = 20.0) -> DevServer:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.pythonpath:
            env["PYTHONPATH"] = str(self.pythonpath)
        command = [
            str(APIARY),
            "dev",
            "--config", str(self.config),
            "--state", str(self.state),
            "--port", str(self.port),
            "--worker", self.worker,
            *self.args,
        ]  # fmt: skip
        if self.tls:
            command += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"apiary dev exited early:\n{self.log()}")
            try:
                meter = httpx.get(f"{self.url}/__meter", timeout=0.5, verify=self.verify)
                if meter.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"apiary dev did not start:\n{self.log()}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def meter(self) -> dict:
        return httpx.get(f"{self.url}/__meter", verify=self.verify).json()

    def reset_meter(self) -> None:
        httpx.post(f"{self.url}/__meter/reset", verify=self.verify).raise_for_status()


def project_config(directory: Path) -> Path:
    """A copy of the project's wrangler.toml in `directory`, its paths made absolute."""
    text = (ROOT / "wrangler.toml").read_text()
    text = text.replace('main = "src/entry.py"', f'main = "{ROOT}/src/entry.py"')
    text = text.replace('migrations_dir = "migrations"', f'migrations_dir = "{ROOT}/migrations"')
    text = text.replace('directory = "public"', f'directory = "{ROOT}/public"')
    config = directory / "wrangler.toml"
    config.write_text(text)
    return config


def wait_up(url: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


def write_dev_vars(directory: Path, **values: str) -> None:
    text = "".join(f'{k}="{v}"\n' for k, v in values.items())
    (directory / ".dev.vars").write_text(text)


def admin_token(scopes: tuple[str, ...] = ("admin",), ttl_s: int = 3600) -> str:
    from auth.tokens import mint

    return mint(
        subject="tests", scopes=list(scopes), now_s=int(time.time()), ttl_s=ttl_s, secret=JWT_SECRET
    )


class Backend:
    """A reference backend process (`apiary backend`), registered with `apiary`."""

    def __init__(self, apiary: DevServer, name: str, work: Path, args: tuple[str, ...]) -> None:
        self.apiary = apiary
        self.name = name
        self.port = free_port()
        self.args = args
        self.log_path = work / f"backend-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.server_id: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> Backend:
        command = [
            str(APIARY), "backend", "--apiary", self.apiary.url,
            "--name", self.name, "--port", str(self.port), *self.args,
        ]  # fmt: skip
        env = {**os.environ, "APIARY_TOKEN": admin_token()}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"backend exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                self.server_id = httpx.get(f"{self.url}/stats", timeout=0.5).json()["server_id"]
            if self.server_id:
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"backend did not register:\n{self.log_path.read_text()}")

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/stats").json()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
