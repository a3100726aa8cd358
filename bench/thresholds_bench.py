"""Thresholds per segment: what judging each segment with its own thresholds costs, against
``find_drops`` with one set for all, in the same run.

Run ``python bench/thresholds_bench.py`` (about a minute; ``--quick`` for a smaller one).
On the steady mix of ``detection_bench.py`` (10,000 segments × 400 days, text columns as
the stores read them: categoricals), each case judges the last day:

* ``find_drops`` — the baseline, today's detection with the defaults;
* the accounts file without ``detection`` (one group: must cost nothing extra);
* a tuned file: other values for one provider and one account, and on two accounts a
  ``name`` glob matching some of their segments and an ``id`` rule.

It checks that the tuned run judges every segment left at the defaults exactly as the
baseline does, and exits non-zero when the untuned case costs more than 10 % over the
baseline or the tuned one more than twice it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from detection_bench import ACCOUNTS, START, generate  # noqa: E402

from segment_assets.config.detection import (  # noqa: E402
    AccountDetection,
    DetectionSettings,
    SegmentRule,
)
from segment_assets.detection import find_drops  # noqa: E402
from segment_assets.detection.configured import find_configured_drops  # noqa: E402

PROVIDERS = list(ACCOUNTS)
TARGET_UNTUNED = 1.10
TARGET_TUNED = 2.0


def tuned_settings(history: pd.DataFrame) -> DetectionSettings:
    """Other values for User.com and one OneSignal app; rules on two accounts."""
    onesignal_app, retail = ACCOUNTS["onesignal"][0], ACCOUNTS["actionhub"][0]
    one_id = str(history.loc[history["account"] == retail, "segment_id"].iloc[0])

    def rules(provider: str, account: str, glob: str) -> tuple[SegmentRule, ...]:
        values = MappingProxyType({"min_drop_pct": 15.0})
        by_id = MappingProxyType({"min_drop_users": 500.0})
        return (
            SegmentRule(provider, account, account, 0, None, glob, values),
            SegmentRule(provider, account, account, 1, one_id, None, by_id),
        )

    return DetectionSettings(
        providers=MappingProxyType(
            {
                "actionhub": AccountDetection(),
                "usercom": AccountDetection(min_drop_users=100),
                "onesignal": AccountDetection(),
            }
        ),
        accounts=MappingProxyType(
            {
                ("onesignal", onesignal_app): AccountDetection(
                    min_z=5, segments=rules("onesignal", onesignal_app, "segment a*")
                ),
                ("actionhub", retail): AccountDetection(
                    segments=rules("actionhub", retail, "segment growth:labels:1?:*")
                ),
            }
        ),
    )


def best_of(
    calls: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, object]]:
    """The fastest wall time of each call and its last result; the calls take turns, so a
    busy moment of the machine does not fall on one case only."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    results: dict[str, object] = {}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            results[name] = call()
            times[name].append(time.perf_counter() - started)
    return {name: (min(times[name]), results[name]) for name in calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 segments × 200 days")
    args = parser.parse_args(argv)
    n_seg, n_days, repeats = (2000, 200, 3) if args.quick else (10_000, 400, 5)
    history = generate(n_seg, n_days, seed=11).history
    for column in ("provider", "account", "segment_id", "segment_name"):
        history[column] = history[column].astype("category")
    as_of = START + pd.Timedelta(days=n_days - 1).to_pytimedelta()
    tuned = tuned_settings(history)

    find_drops(history, as_of)  # warm-up
    measured = best_of(
        {
            "base": lambda: find_drops(history, as_of),
            "untuned": lambda: find_configured_drops(
                history, as_of, DetectionSettings(), PROVIDERS
            ),
            "tuned": lambda: find_configured_drops(history, as_of, tuned, PROVIDERS),
        },
        repeats,
    )
    base, expected = measured["base"]
    untuned, (same, _) = measured["untuned"]
    tuned_time, (found, matched) = measured["tuned"]

    key = ["provider", "account", "segment_id"]
    # the accounts whose segments are not all at the defaults
    ruled = {key for key in tuned.accounts} | {("usercom", a) for a in ACCOUNTS["usercom"]}

    def untouched(frame: pd.DataFrame) -> pd.DataFrame:
        pairs = list(zip(frame["provider"].astype(str), frame["account"].astype(str), strict=True))
        keep = np.array([p not in ruled for p in pairs], dtype=bool)
        return frame.loc[keep, key].astype(str).sort_values(key).reset_index(drop=True)

    agree = same.equals(expected) and untouched(found).equals(untouched(expected))
    print(f"{n_seg:,} segments × {n_days} days, {len(history):,} rows; best of {repeats}")
    print(f"  find_drops (baseline)         {base:6.3f} s  {len(expected)} drops")
    print(f"  no detection settings         {untuned:6.3f} s  ×{untuned / base:.2f}")
    print(
        f"  tuned: 3 levels, 4 rules      {tuned_time:6.3f} s  ×{tuned_time / base:.2f}  "
        f"{len(found)} drops; rules matched {sorted(matched.values())}"
    )
    print(f"  segments at the defaults judged as the baseline: {'yes' if agree else 'NO'}")
    misses = []
    if not agree:
        misses.append("segments at the defaults were judged differently")
    if untuned > base * TARGET_UNTUNED:
        misses.append(f"untuned over ×{TARGET_UNTUNED}")
    if tuned_time > base * TARGET_TUNED:
        misses.append(f"tuned over ×{TARGET_TUNED}")
    for miss in misses:
        print(f"MISSED: {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
