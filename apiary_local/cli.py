"""`apiary`: the local runtime and its tools.

    apiary dev    [--config wrangler.toml] [--env NAME] [--state DIR] [--port 8787] ...
    apiary token  --scope SCOPE [--scope ...] [--ttl 1h] [--subject NAME]
    apiary backend --apiary URL --admin-token TOKEN [...]   (the reference backend)
    apiary device join|resume BASE_URL --swarm ID [--token TOKEN] [...]   (a swarm device)
    apiary browser-runner [--host 127.0.0.1] [--port 8790] [--max-concurrency 2]   (browser checks)

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
    parser = argparse.ArgumentParser(prog="apiary", description=__doc__.split("\n")[0])
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

    token = commands.add_parser("token", help="mint a JWT signed with JWT_SECRET")
    common(token)
    token.add_argument("--scope", action="append", required=True, dest="scopes")
    token.add_argument("--ttl", type=parse_ttl, default=3600)
    token.add_argument("--subject", default="apiary-cli")
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
    cli_log = logs.get_logger("cli")
    cli_log.info(f"apiary dev: http://{args.host}:{args.port} (state {args.state.resolve()})")
    cli_log.info(f"local Cloudflare account: http://127.0.0.1:{args.port}/client/v4")
    if runtime.generated_token:
        token_file = local_token.path_in(args.state.resolve())
        cli_log.info(f"its API token (generated, CF_API_TOKEN is unset) is in {token_file}")
    uvicorn.run(
        LocalServer(runtime, port=args.port),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",
        lifespan="on",
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
    print(
        mint(
            subject=args.subject,
            scopes=args.scopes,
            now_s=int(time.time()),
            ttl_s=args.ttl,
            secret=secret,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["backend"]:
        from apiary_local import reference_backend

        return reference_backend.main(argv[1:])
    if argv[:1] == ["browser-runner"]:
        from apiary_local import browser_runner

        return browser_runner.main(argv[1:])
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
