"""``python -m kubesim --regions FILE --kubeconfig OUT [--host H] [--base-port N]
[--state-file PATH]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from kubesim.config import load_config
from kubesim.kubeconfig import write_files
from kubesim.server import DEFAULT_BASE_PORT, Simulator
from kubesim.state import DEFAULT_INTERVAL
from kubesim.watch import BOOKMARK_INTERVAL


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kubesim", description=__doc__)
    parser.add_argument("--regions", required=True, help="regions YAML file")
    parser.add_argument(
        "--kubeconfig",
        default="kubeconfig",
        help="where to write the kubeconfig (kubesim.json goes beside it)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help="control API port; region i listens on base-port+1+i",
    )
    parser.add_argument(
        "--watch-window",
        type=int,
        default=1000,
        help="watch events kept per resource kind before 410 Gone",
    )
    parser.add_argument(
        "--bookmark-interval",
        type=float,
        default=BOOKMARK_INTERVAL,
        help="seconds between watch BOOKMARK events",
    )
    parser.add_argument(
        "--state-file",
        default=None,
        help="keep every region's state in this file: restored at start if "
        "it exists, saved periodically and on SIGINT/SIGTERM",
    )
    parser.add_argument(
        "--state-interval",
        type=float,
        default=DEFAULT_INTERVAL,
        help="seconds between periodic state saves (0: only on stop)",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    config = load_config(args.regions)
    sim = Simulator(
        config,
        host=args.host,
        base_port=args.base_port,
        watch_window=args.watch_window,
        bookmark_interval=args.bookmark_interval,
        state_file=args.state_file,
        state_interval=args.state_interval,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sim.start()
    except OSError as exc:
        print(f"kubesim: cannot listen: {exc}", file=sys.stderr)
        await sim.stop()
        return 1
    write_files(args.kubeconfig, sim.control_url, sim.region_urls())
    if sim.restored:
        print(f"restored {sum(sim.restored.values())} objects from {args.state_file}")
    for name, url in sim.region_urls().items():
        print(f"region {name} {url}")
    print(f"control {sim.control_url}")
    print("kubesim ready", flush=True)
    await stop.wait()
    await sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    code = main()
    # Everything is saved and closed: skip the interpreter's teardown, which takes many
    # seconds with a large heap (10,000 Jobs) and would outlast `meridian up`'s stop grace.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
