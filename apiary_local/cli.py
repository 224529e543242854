"""`apiary`: the local runtime and its tools.

    apiary dev    [--config wrangler.toml] [--env NAME] [--state DIR] [--port 8787] ...
    apiary token  --scope SCOPE [--scope ...] [--ttl 1h] [--subject NAME] [--open]
    apiary backend --apiary URL [...]   (the reference backend; APIARY_TOKEN to register)
    apiary device join|resume BASE_URL --swarm ID [--token-file F] [...]   (a swarm device)
    apiary browser-runner [--host 127.0.0.1] [--port 8790] [--max-concurrency 2]   (browser checks)
    apiary check-deployed URL [--backend URL] [--job NAME]   (after a real deploy; APIARY_TOKEN)
    apiary self-check install|run URL   (the apiary-self browser-check suite; APIARY_TOKEN)

`src/` is imported the way Cloudflare imports it: as the import root, found from `main` in
wrangler.toml. So nothing from `src/` is imported before the config is read.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time
from pathlib import Path

from apiary_local.config import ConfigError, load

_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    match = _TTL.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"bad ttl {text!r}: use e.g. 900, 15m, 1h, 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # `--token SECRET` must not be read as `--token-file`
        prog="apiary",
        description=__doc__.split("\n")[0],
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", type=Path, default=Path("wrangler.toml"))
        sub.add_argument("--env", default=None, help="a [env.NAME] of wrangler.toml")

    dev = commands.add_parser("dev", help="serve the Worker on this machine")
    common(dev)
    dev.add_argument("--state", type=Path, default=Path(".apiary/state"))
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8787)
    dev.add_argument("--worker", default="worker:WORKER", help="MODULE:ATTR under src/")
    dev.add_argument("--no-cron", action="store_true", help="fire crons only on /__scheduled")
    dev.add_argument("--evict-after", type=float, default=30.0, metavar="SECONDS")
    # https locally: what a phone on the LAN needs for WebCrypto, and what the dashboard's
    # Secure cookie and HSTS are checked against.
    dev.add_argument("--tls-cert", type=Path, help="serve https with this PEM certificate")
    dev.add_argument("--tls-key", type=Path, help="the certificate's PEM private key")

    token = commands.add_parser("token", help="mint a JWT signed with JWT_SECRET")
    common(token)
    token.add_argument("--scope", action="append", required=True, dest="scopes")
    token.add_argument("--ttl", type=parse_ttl, default=3600)
    token.add_argument("--subject", default="apiary-cli")
    token.add_argument(
        "--open",
        action="store_true",
        help="print (and open, if a browser is available) a dashboard sign-in link instead",
    )
    token.add_argument("--url", help="the dashboard's address (default: PUBLIC_URL)")
    return parser


def _import_root(config_main: Path) -> None:
    src = str(config_main.parent)
    if src not in sys.path:
        sys.path.insert(0, src)


def _dev(args: argparse.Namespace) -> int:
    config = load(args.config, args.env)
    _import_root(config.main)
    import uvicorn

    import logs
    from apiary_local import local_token
    from apiary_local.runtime import LocalRuntime
    from apiary_local.server import LocalServer

    logs.configure(config.vars.get("LOG_LEVEL", "INFO"))
    module_name, _, attr = args.worker.partition(":")
    definition = getattr(importlib.import_module(module_name), attr or "WORKER")
    runtime = LocalRuntime(
        config,
        definition,
        args.state.resolve(),
        run_crons=not args.no_cron,
        evict_after_s=args.evict_after,
        port=args.port,
    )
    scheme = "https" if args.tls_cert else "http"
    cli_log = logs.get_logger("cli")
    cli_log.info(f"apiary dev: {scheme}://{args.host}:{args.port} (state {args.state.resolve()})")
    cli_log.info(f"local Cloudflare account: {scheme}://127.0.0.1:{args.port}/client/v4")
    if runtime.generated_token:
        token_file = local_token.path_in(args.state.resolve())
        cli_log.info(f"its API token (generated, CF_API_TOKEN is unset) is in {token_file}")
    from swarms.protocol import MAX_FRAME_BYTES

    cert, key = (str(args.tls_cert), str(args.tls_key)) if args.tls_cert else (None, None)
    uvicorn.run(
        LocalServer(runtime, port=args.port),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",
        # A frame over this never reaches an object: the socket closes (1009) before it is
        # buffered whole. Up to it, the protocol answers an oversize frame with `too_large`.
        ws_max_size=2 * MAX_FRAME_BYTES,
        lifespan="on",
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    config = load(args.config, args.env)
    _import_root(config.main)
    from auth.scopes import unknown
    from auth.tokens import mint

    bad = unknown(args.scopes)
    if bad:
        print(f"apiary token: unknown scope(s): {', '.join(bad)}", file=sys.stderr)
        return 2
    secret = config.secrets.get("JWT_SECRET") or os.environ.get("JWT_SECRET", "")
    if not secret:
        print("apiary token: JWT_SECRET is not set in .dev.vars", file=sys.stderr)
        return 2
    token = mint(
        subject=args.subject,
        scopes=args.scopes,
        now_s=int(time.time()),
        ttl_s=args.ttl,
        secret=secret,
    )
    if not args.open:
        print(token)
        return 0
    public = config.secrets.get("PUBLIC_URL") or config.vars.get("PUBLIC_URL")
    base = args.url or public or "http://127.0.0.1:8787"
    link = sign_in_link(base, token)
    print(link)
    open_in_browser(link)
    return 0


def sign_in_link(base: str, token: str) -> str:
    """The token rides in the fragment: browsers never send it, so no access log, proxy or
    Referer sees it; the sign-in page posts it to POST /api/auth/session and then removes it
    from the address bar and history."""
    return f"{base.rstrip('/')}/signin#token={token}"


def open_in_browser(link: str) -> bool:
    """Open the link where a desktop browser is at hand (never on a headless server). The link
    goes to the browser process itself, not through a shell."""
    import webbrowser

    if not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or sys.platform in ("darwin", "win32")
    ):
        return False
    try:
        return webbrowser.open(link, new=2)
    except webbrowser.Error:
        return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["backend"]:
        from apiary_local import reference_backend

        return reference_backend.main(argv[1:])
    if argv[:1] == ["browser-runner"]:
        _import_root(Path(__file__).resolve().parents[1] / "src" / "entry.py")
        from apiary_local import browser_runner

        return browser_runner.main(argv[1:])
    if argv[:1] == ["self-check"]:
        from apiary_local import self_check

        return self_check.main(argv[1:])
    if argv[:1] == ["check-deployed"]:
        from apiary_local import check_deployed

        return check_deployed.main(argv[1:])
    if argv[:1] == ["device"]:
        _import_root(Path(__file__).resolve().parents[1] / "src" / "entry.py")
        from apiary_local import device_agent

        return device_agent.main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return _dev(args) if args.command == "dev" else _token(args)
    except ConfigError as exc:
        print(f"apiary: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
