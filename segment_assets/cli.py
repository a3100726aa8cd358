"""Command line for scripts and cron: the same assets and drop detector as the UI.

    python -m segment_assets snapshot --date 2026-03-14 [--provider onesignal] [--allow-late]
                                      [--refetch-all] [--accept-shrunk]
    python -m segment_assets drops --date 2026-03-14 [--provider usercom]
    python -m segment_assets migrate --from data/segment_assets.duckdb [--overwrite]
    python -m segment_assets ack <provider> <account> [--segment ID] --from DAY [--to DAY]
                                 --reason TEXT
    python -m segment_assets mute <provider> <account> [--segment ID] --until DAY [--reason TEXT]
    python -m segment_assets acks [--all]
    python -m segment_assets unack <ID>

``snapshot`` materialises the partition with the real definitions (resources from the
environment, runs recorded in ``$DAGSTER_HOME`` when it is set, else in a throwaway
instance). ``drops`` reads the stored history and prints the drops found for the day.
``migrate`` copies the history of a file of the embedded store into the database
``SEGMENT_ASSETS_DATABASE_URL`` names, day by day, and prints the verified row counts.
``ack``, ``mute``, ``acks`` and ``unack`` record, list and remove acknowledgements and mutes
in the store (see :mod:`segment_assets.acks.commands`).

Exit codes: 0 ok, 1 drops found (``drops`` only), 2 usage or configuration error (bad
arguments, a date that is not a partition, a missing variable, a bad accounts file, a store
that cannot be used, a partition too old), 3 a provider, an account or the run failed (the
accounts that succeeded are stored), or ``migrate`` could not verify the copy. Only these
errors are mapped: anything else is a bug and stays a traceback, with Python's exit code 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Sequence

import dagster as dg

from segment_assets.acks import commands as ack_commands
from segment_assets.acks.accounts import AckInputError
from segment_assets.config import ConfigurationError
from segment_assets.defs.dead_runs import close_dead_runs, process_tags
from segment_assets.providers import registry
from segment_assets.store import StoreError
from segment_assets.store.base import StoreBusyError

OK, DROPS_FOUND, USAGE_ERROR, RUN_FAILED = 0, 1, 2, 3
# Raised before a run starts by a setting the user fixes (the accounts file, a variable that
# is not set or not usable, the store): exit 2 with the message.
SETTING_ERRORS: tuple[type[Exception], ...] = (
    ConfigurationError,
    StoreError,
    dg.DagsterInvalidConfigError,  # a resource's variable that is not set
)
# Step failures that a setting or an argument fixes, not a retry later (by class name: the
# run reports its errors serialised). A store busy for longer than a step may wait
# (StoreBusyError, whatever the store) is a run failure: trying again later fixes it.
STEP_SETTING_ERRORS = frozenset(
    {"ConfigurationError", "StoreError", "StorageError", "LatePartitionError"}
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m segment_assets",
        description="Snapshot segment counts and find drops without the UI.",
        epilog="Exit codes: 0 ok, 1 drops found, 2 usage/configuration error, "
        "3 provider or run failure.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser(
        "migrate",
        help="copy stored history into the database SEGMENT_ASSETS_DATABASE_URL names",
        description="Copy the history of a segment_assets file (SEGMENT_ASSETS_DUCKDB) into "
        "the database SEGMENT_ASSETS_DATABASE_URL names, day by day; safe to run again. Exit "
        "codes: 0 copied and row counts verified, 2 usage or configuration error, 3 not "
        "verified (days the database holds with other rows are kept; --overwrite replaces "
        "them).",
    )
    migrate.add_argument(
        "--from", dest="source", required=True, help="the file to copy from (read, never changed)"
    )
    migrate.add_argument(
        "--table", action="append", help="only this table (repeatable; default: all)"
    )
    migrate.add_argument(
        "--overwrite",
        action="store_true",
        help="replace days the database already holds with other rows",
    )
    for name, text in (
        ("snapshot", "materialise one daily partition of the provider assets"),
        ("drops", "print the drops found for one day (exit 1 if any)"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument(
            "--date", required=True, type=dt.date.fromisoformat, help="the UTC day YYYY-MM-DD"
        )
        command.add_argument(
            "--provider",
            action="append",
            choices=registry.NAMES,
            help="only this provider (repeatable; default: all)",
        )
        if name == "snapshot":
            command.add_argument(
                "--allow-late",
                action="store_true",
                help="store today's counts under a partition older than 36 hours",
            )
            command.add_argument(
                "--refetch-all",
                action="store_true",
                help="fetch every account again, even when the stored day lacks only some",
            )
            command.add_argument(
                "--accept-shrunk",
                action="store_true",
                help="store accounts that list far fewer segments than their latest stored "
                "day (a real mass deletion)",
            )
    ack_commands.add_parsers(commands)
    return parser.parse_args(argv)


def step_errors(result: dg.ExecuteInProcessResult) -> list[tuple[str, str, str]]:
    """(step, error class, message) of every failed step, and of resources that could not
    start (the store, before any step): the first error that is not Dagster's own wrapper,
    i.e. what the asset or the resource raised."""
    found = []
    for event in result.all_events:
        if event.event_type_value not in ("STEP_FAILURE", "RESOURCE_INIT_FAILURE"):
            continue
        error = event.event_specific_data.error
        while error.cause is not None and error.cls_name.startswith("Dagster"):
            error = error.cause
        message = re.sub(rf"^[\w.]*{error.cls_name}: ", "", error.message.strip())
        found.append((event.step_key or "resources", error.cls_name, message))
    return found


def snapshot(
    day: dt.date,
    providers: Sequence[str],
    allow_late: bool,
    refetch_all: bool = False,
    accept_shrunk: bool = False,
) -> int:
    from segment_assets.definitions import defs
    from segment_assets.defs.account_check import ACCOUNTS_CHECK

    keys = [dg.AssetKey(registry.get(p).table) for p in providers]
    partitions = defs.resolve_assets_def(keys[0]).partitions_def
    assert partitions is not None, "the provider assets are daily-partitioned"
    if not partitions.has_partition_key(day.isoformat()):
        print(
            f"error: {day} is not a partition: the daily partitions run from "
            f"{partitions.get_first_partition_key()} (SEGMENT_ASSETS_START_DATE) to "
            f"{partitions.get_last_partition_key()}, the last UTC day that has ended",
            file=sys.stderr,
        )
        return USAGE_ERROR
    op_config = {
        "allow_late_partition": allow_late,
        "refetch_all": refetch_all,
        "accept_shrunk_accounts": accept_shrunk,
    }
    run_config = {
        "ops": {k.path[-1]: {"config": op_config} for k in keys},
        # INFO shows the assets' own messages (progress, counts), not Dagster's event stream
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }
    assets = [*defs.assets, *(defs.asset_checks or [])]
    with _instance() as instance:
        close_dead_runs(instance, lambda line: print(f"warning: {line}", file=sys.stderr))
        result = dg.materialize(
            assets,
            selection=keys,
            partition_key=day.isoformat(),
            resources=defs.resources,
            run_config=run_config,
            instance=instance,
            tags=process_tags(),
            raise_on_error=False,
        )
    for key in keys:
        for event in result.asset_materializations_for_node(key.path[-1]):
            meta = {k: v.value for k, v in event.metadata.items()}
            print(
                f"{key.to_user_string()} {day}: {meta.get('segments')} segments, "
                f"{meta.get('total_users', 0):,} users"
            )
    accounts_failed = False
    for evaluation in result.get_asset_check_evaluations():
        warn = evaluation.severity == dg.AssetCheckSeverity.WARN
        state = "passed" if evaluation.passed else "FAILED (WARN)" if warn else "FAILED"
        print(f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}: {state}")
        if evaluation.check_name == ACCOUNTS_CHECK and not evaluation.passed and warn:
            print(f"warning: {evaluation.asset_key.to_user_string()}: {evaluation.description}",
                  file=sys.stderr)  # fmt: skip
        elif evaluation.check_name == ACCOUNTS_CHECK and not evaluation.passed:
            accounts_failed = True
            print(f"error: {evaluation.asset_key.to_user_string()}: {evaluation.description}",
                  file=sys.stderr)  # fmt: skip
    if result.success:
        return RUN_FAILED if accounts_failed else OK
    errors = step_errors(result)
    for step, cls_name, message in errors:
        print(f"error: {step}: {message} ({cls_name})", file=sys.stderr)
    if errors and all(cls_name in STEP_SETTING_ERRORS for _, cls_name, _ in errors):
        return USAGE_ERROR
    return RUN_FAILED


def drops(day: dt.date, providers: Sequence[str]) -> int:
    from segment_assets.defs.drops import flag_drops
    from segment_assets.defs.drops_shown import drops_markdown
    from segment_assets.store import store_from_env

    flagged = flag_drops(store_from_env(), [registry.get(p).table for p in providers], day)
    found = flagged.drops
    if found.empty:
        print(f"no drops on {day}")
        return OK
    print(f"{len(found)} drop(s) on {day}:\n")
    print(drops_markdown(found, flagged.accounts))
    return DROPS_FOUND


def migrate(source: str, tables: Sequence[str] | None, overwrite: bool) -> int:
    from segment_assets.store.migrate import CopyNotVerifiedError, copy_history

    class Progress:
        def info(self, message: str) -> None:
            print(message, flush=True)

    try:
        summary = copy_history(source, tables=tables, overwrite=overwrite, log=Progress())
    except CopyNotVerifiedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return RUN_FAILED
    if summary.verified:
        print("copied; every day's row count verified")
        return OK
    print(
        "error: some days differ: the database holds other rows for them (written there "
        "since?) and kept them; run again with --overwrite to replace them by the file's",
        file=sys.stderr,
    )
    return RUN_FAILED


def _instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    providers = getattr(args, "provider", None) or list(registry.NAMES)
    try:
        if args.command == "migrate":
            return migrate(args.source, args.table, args.overwrite)
        if args.command in ack_commands.COMMANDS:
            from segment_assets.store import store_from_env

            ack_commands.run(args, store_from_env())
            return OK
        if args.command == "snapshot":
            return snapshot(
                args.date, providers, args.allow_late, args.refetch_all, args.accept_shrunk
            )
        return drops(args.date, providers)
    except AckInputError as exc:  # nothing was recorded
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except StoreBusyError as exc:  # another process kept the store locked: try again later
        print(f"error: {exc}", file=sys.stderr)
        return RUN_FAILED
    except SETTING_ERRORS as exc:
        for line in setting_error_lines(exc):
            print(f"error: {line}", file=sys.stderr)
        return USAGE_ERROR


def setting_error_lines(exc: Exception) -> list[str]:
    """What to fix, one line a problem: Dagster's config errors without their stack traces."""
    if not isinstance(exc, dg.DagsterInvalidConfigError):
        return [str(exc)]
    lines = []
    for error in exc.errors:
        cause = getattr(error.error_data, "message", None)  # a failed post-processing step
        text = cause.strip() if isinstance(cause, str) else error.message
        lines.append(re.sub(r"^[\w.]*Error: ", "", text))
    return lines
