"""Take the README's screenshots of Dagster's UI again: ``python -m scripts.screenshots``
(``make screenshots``), from the repository's root.

It builds the world of ``scenario.yaml`` in a temporary folder (the bundled emulator, a
DuckDB file, a DAGSTER_HOME and real runs), starts ``dagster dev`` on it (the webserver, and
the daemon when a shot needs the drop sensor's tick), and takes each shot with Debian's
Chromium into ``docs/images/``. It fails, naming the shot, when the UI does not show a text
the scenario expects. Needs ``apt-get install chromium`` and the dev extra (Playwright).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from scripts.screenshots.browser import BrowserMissing, browser_page
from scripts.screenshots.scenario import SCENARIO_FILE, ScenarioError, load_scenario
from scripts.screenshots.shoot import ShotError, take_shot
from scripts.screenshots.webserver import WebserverError, serve, wait_for_sensor_tick
from scripts.screenshots.world import ROOT, WorldError, build_world, place_world

OUT = ROOT / "docs" / "images"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.screenshots", description=__doc__)
    parser.add_argument("--scenario", type=Path, default=SCENARIO_FILE, help="the scenario file")
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go (docs/images)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="build the world in this new folder and keep it (default: a temporary one)",
    )
    parser.add_argument("--only", nargs="+", metavar="FILE", help="take only these shots")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"screenshots: {text} ({time.monotonic() - started:.1f} s)", flush=True)

    try:
        scenario = load_scenario(args.scenario)
        shots = [s for s in scenario.shots if not args.only or s.file in args.only]
        if not shots:
            raise ScenarioError(f"no shot of {args.scenario} is named {', '.join(args.only)}")
    except ScenarioError as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            temporary = stack.enter_context(tempfile.TemporaryDirectory(prefix="screenshots_"))
            folder = Path(temporary)
        else:
            folder = args.keep
        log = folder / "dagster.log"
        try:
            place = place_world(scenario.world, folder)
            facts = build_world(scenario.world, place)
            say(f"world built in {folder}: drops on {place.day}")
            daemon = any(s.needs == "sensor_tick" for s in shots)
            with serve(place, daemon=daemon, log=log) as ui:
                url = ui.ready()
                say(f"Dagster UI at {url}")
                if daemon:
                    wait_for_sensor_tick(url)
                    say("the drop sensor ticked")
                with browser_page() as page:
                    for shot in shots:
                        path = take_shot(page, url, shot, facts, args.out)
                        say(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        except (WorldError, WebserverError, ShotError, BrowserMissing, ScenarioError) as exc:
            print(f"screenshots: {exc}", file=sys.stderr)
            if isinstance(exc, WebserverError) and log.exists():
                print("".join(log.read_text().splitlines(True)[-30:]), file=sys.stderr)
            return 1
    say("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
