"""`meridian`: one entry point for every role.

meridian up                                   the whole system on one machine
meridian worker --role central                TaskWorkflow, region monitor, sweeps
meridian worker --role unit --region NAME     one region's Jobs, watch, resident channels
meridian api                                  the REST API
meridian migrate                              bring the database schema up to date
meridian deploy render|kubeconfig|check       deployment from the fleet file (infra/README.md)
meridian task|region|placement ...            the REST API's client (meridian task -h)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from meridian.app import client
from meridian.settings import Settings


def _configure_logging(level: str = "INFO", service: str = "meridian") -> None:
    # Imported here: `meridian task ...` (the users' client) needs neither.
    from meridian.observability.logs import configure_logging
    from meridian.observability.tracing import configure_tracing

    try:
        log_format = Settings().log_format  # MERIDIAN_LOG_FORMAT
    except ValidationError:
        log_format = "text"  # the command itself reports what is wrong with its settings
    configure_logging(level, log_format)
    configure_tracing(service)  # only when OTEL_* variables ask for export
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    for field in (
        "state_dir",
        "database_url",
        "temporal_address",
        "regions_file",
        "kubeconfig",
        "api_host",
        "api_port",
        "temporal_port",
        "temporal_ui_port",
        "kubesim_base_port",
    ):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return Settings(**overrides)  # type: ignore[arg-type]


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _exit_hard(code: int) -> None:
    # The Temporal SDK can abort the interpreter during finalisation after a clean
    # shutdown (PyGILState_Release); everything is closed by now, so skip finalisation.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_worker(args: argparse.Namespace) -> None:
    settings = _settings_from(args)

    async def run(stop: asyncio.Event) -> None:
        if args.role == "central":
            from workers.central import run_central

            await run_central(settings, stop)
        else:
            from meridian.regions.config import load_regions
            from workers.unit import run_units

            regions = args.region or load_regions(settings.regions_file).names
            await run_units(settings, regions, stop)

    async def main() -> None:
        from meridian.app.health import start_worker_health

        stop = _stop_event()
        worker = asyncio.create_task(run(stop), name=f"worker-{args.role}")
        health = await start_worker_health(settings, worker)
        try:
            await worker
        finally:
            if health is not None:
                await health.close()

    asyncio.run(main())
    _exit_hard(0)


def cmd_api(args: argparse.Namespace) -> None:
    import uvicorn

    from api.main import create_app

    settings = _settings_from(args)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        timeout_keep_alive=settings.api_keep_alive_seconds,
    )


def cmd_migrate(args: argparse.Namespace) -> None:
    from meridian.store import Store

    store = Store.from_settings(_settings_from(args))
    store.migrate()
    store.close()
    print(f"database at {store.url} is up to date")


def cmd_up(args: argparse.Namespace) -> None:
    from meridian.app.supervisor import Supervisor

    settings = _settings_from(args)
    supervisor = Supervisor(settings, temporal_bin=args.temporal_bin)
    code = asyncio.run(supervisor.run())
    sys.exit(code)


def parse_ttl(text: str) -> float:
    """`90`, `90s`, `30m`, `1h`, `7d` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            seconds = float(text[:-1]) * units[text[-1]]
        else:
            seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad ttl {text!r}: use e.g. 90s, 30m, 1h, 7d") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"bad ttl {text!r}: must be positive")
    return seconds


def cmd_token(args: argparse.Namespace) -> None:
    from meridian.auth.keys import LocalKey
    from meridian.auth.tokens import mint_token

    settings = _settings_from(args)
    path = settings.auth.key_file(settings.state_dir)
    if not path.exists():
        sys.exit(f"meridian token: no local signing key at {path}; `meridian up` creates it")
    token = mint_token(
        LocalKey.load(path),
        business_unit=args.business_unit,
        roles=args.role or [],
        ttl_seconds=args.ttl,
        subject=args.subject,
        settings=settings.auth,
    )
    print(token)


def cmd_deploy_render(args: argparse.Namespace) -> None:
    from meridian.deploy.render import render

    written = render(
        args.fleet,
        args.out,
        fleet_root_dir=args.fleet_root,
        k8s_root=args.k8s_root,
        image=args.image,
        tag=args.image_tag,
        terraform_output=args.terraform_output,
    )
    print(f"wrote {len(written)} files under {args.out}")


def cmd_deploy_kubeconfig(args: argparse.Namespace) -> None:
    from meridian.deploy.kubeconfig import write_kubeconfig

    contexts = write_kubeconfig(args.terraform_output, args.out, fleet=args.fleet)
    print(f"wrote {args.out}: contexts {', '.join(contexts)}")


def cmd_deploy_check(args: argparse.Namespace) -> None:
    from meridian.deploy.check import run_checks

    sys.exit(0 if run_checks(args.fleet, args.rendered, only=args.only) else 1)


def _deploy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from meridian.deploy.render import IMAGE

    deploy = sub.add_parser("deploy", help="render, connect to and check the deployment")
    steps = deploy.add_subparsers(dest="deploy_command", required=True)
    fleet = Path("infra/regions/fleet-15.yaml")

    render = steps.add_parser("render", help="Terraform variables, overlays, regions ConfigMap")
    render.add_argument("--fleet", type=Path, default=fleet)
    render.add_argument("--out", type=Path, default=Path("build/deploy"))
    render.add_argument("--fleet-root", type=Path, help="also rewrite this Terraform root")
    render.add_argument("--k8s-root", type=Path, help="also rewrite overlays/ and regions/ here")
    render.add_argument("--image", default=IMAGE, help="image repository (default: meridian)")
    render.add_argument("--image-tag", help="image tag (default: this Meridian's version)")
    render.add_argument(
        "--terraform-output", type=Path, help="`terraform output -json` of the fleet root"
    )
    render.set_defaults(func=cmd_deploy_render)

    kubeconfig = steps.add_parser("kubeconfig", help="one context per region, from Terraform")
    kubeconfig.add_argument("--terraform-output", type=Path, required=True)
    kubeconfig.add_argument("--out", type=Path, default=Path("kubeconfig"))
    kubeconfig.add_argument("--fleet", type=Path, default=fleet)
    kubeconfig.set_defaults(func=cmd_deploy_kubeconfig)

    check = steps.add_parser("check", help="every offline validation; exit 1 on a failure")
    check.add_argument("--fleet", type=Path, default=fleet)
    check.add_argument(
        "--rendered", "--out", dest="rendered", type=Path, default=Path("build/deploy/check")
    )
    check.add_argument("--only", action="append", help="run only these checks (repeatable)")
    check.set_defaults(func=cmd_deploy_check)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        dest="state_dir",
        type=Path,
        help="local state (SQLite, kubeconfig, logs); default .meridian",
    )
    parser.add_argument("--database-url", dest="database_url")
    parser.add_argument("--temporal-address", dest="temporal_address")
    parser.add_argument("--regions-file", "--regions", dest="regions_file", type=Path)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--log-level", default="INFO")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meridian", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    client.register(sub)  # task, region, placement: for users, over the REST API

    up = sub.add_parser("up", help="run the whole system on one machine")
    _common(up)
    up.add_argument("--api-port", dest="api_port", type=int)
    up.add_argument("--api-host", dest="api_host")
    up.add_argument("--temporal-port", dest="temporal_port", type=int)
    up.add_argument("--ui-port", dest="temporal_ui_port", type=int)
    up.add_argument("--kubesim-base-port", dest="kubesim_base_port", type=int)
    up.add_argument("--temporal-bin", help="path of the temporal CLI (default: beside python)")
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="run a central or unit worker")
    _common(worker)
    worker.add_argument("--role", choices=["central", "unit"], required=True)
    worker.add_argument(
        "--region",
        action="append",
        help="region(s) this unit worker serves (repeatable; default: all)",
    )
    worker.set_defaults(func=cmd_worker)

    api = sub.add_parser("api", help="run the REST API")
    _common(api)
    api.add_argument("--host", dest="api_host")
    api.add_argument("--port", dest="api_port", type=int)
    api.set_defaults(func=cmd_api)

    token = sub.add_parser(
        "token", help="print a bearer token signed with the local key of `meridian up`"
    )
    _common(token)
    token.add_argument("--business-unit", dest="business_unit", required=True)
    token.add_argument("--role", action="append", help="a role to grant (repeatable): admin")
    token.add_argument("--ttl", type=parse_ttl, default=3600.0, help="lifetime: 90s, 30m, 1h, 7d")
    token.add_argument("--subject", help="the token's subject (default: <business unit>-user)")
    token.set_defaults(func=cmd_token)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    _common(migrate)
    migrate.set_defaults(func=cmd_migrate)
    _deploy_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    role = getattr(args, "role", None)
    _configure_logging(getattr(args, "log_level", "INFO"), f"meridian-{role or args.command}")
    args.func(args)


if __name__ == "__main__":
    main()
