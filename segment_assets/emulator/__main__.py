"""Run the emulator in the foreground: ``python -m segment_assets.emulator --port 8765``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import sys
import threading

from .config import EmulatorConfig
from .server import EmulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m segment_assets.emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--date", type=dt.date.fromisoformat, help="emulator date (default: today)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--actionhub-segments", type=int, help="items per ActionHub list")
    p.add_argument("--usercom-segments", type=int, help="segments per User.com app")
    p.add_argument("--onesignal-segments", type=int, help="segments per OneSignal app")
    p.add_argument("--view-rps", type=float, help="OneSignal view limit per app (req/s)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    cfg = EmulatorConfig(
        seed=args.seed,
        today=args.date,
        host=args.host,
        port=args.port,
        verbose=args.verbose,
        view_rate_limit_rps=args.view_rps,
    )
    if args.actionhub_segments is not None:
        n = args.actionhub_segments
        cfg.actionhub = [dataclasses.replace(p, segments_per_list=n) for p in cfg.actionhub]
    if args.usercom_segments is not None:
        n = args.usercom_segments
        cfg.usercom = [dataclasses.replace(a, n_segments=n) for a in cfg.usercom]
    if args.onesignal_segments is not None:
        n = args.onesignal_segments
        cfg.onesignal = [dataclasses.replace(a, n_segments=n) for a in cfg.onesignal]
    cfg.__post_init__()
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = build_config(parse_args(argv))
    with EmulatorServer(cfg) as emu:
        print(f"emulator listening on {emu.url} (date {emu.state.today})")
        print(f"  actionhub  {emu.base_url('actionhub')}  programs:", end=" ")
        print(", ".join(p.program_id for p in cfg.actionhub))
        for app in cfg.usercom:
            print(f"  usercom    {emu.base_url('usercom', app.subdomain)}")
        print(f"  onesignal  {emu.base_url('onesignal')}  apps:", end=" ")
        print(", ".join(a.app_id for a in cfg.onesignal))
        print("  control    POST /_emulator/{date,faults,clear,drop,remove}")
        print("             GET /_emulator/{stats,truth,faults,date}")
        print("credentials: the DEMO_* constants in segment_assets.emulator.config")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
