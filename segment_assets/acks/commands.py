"""The command line's acknowledgements and mutes::

    python -m segment_assets ack <provider> <account> [--segment ID] --from DAY [--to DAY]
                                 --reason TEXT
    python -m segment_assets mute <provider> <account> [--segment ID] --until DAY [--reason TEXT]
    python -m segment_assets acks [--all]
    python -m segment_assets unack <ID>

``<account>`` is the accounts file's name for the account or its id in the store (program
id, User.com app host, OneSignal app id). Days are UTC days written ``YYYY-MM-DD``; both
ends are included. Input that cannot be recorded raises :class:`AckInputError` (the
command line exits 2 with its message); nothing is stored then.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Mapping

import pandas as pd

from segment_assets.acks.accounts import AckInputError, account_names, resolve_account
from segment_assets.acks.records import Ack, from_frame
from segment_assets.acks.table import add_ack, fresh_id, read_acks, remove_ack
from segment_assets.detection import HISTORY_DAYS_NEEDED
from segment_assets.providers import registry
from segment_assets.store import SegmentStore

COMMANDS: tuple[str, ...] = ("ack", "mute", "acks", "unack")
#: ``acks`` lists what is in force and what ended within this many days (``--all``: all).
RECENT_DAYS = 30
PROGRAM = "python -m segment_assets"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def day_argument(text: str) -> dt.date:
    """A UTC day written ``YYYY-MM-DD`` (argparse type)."""
    try:
        if _DAY.fullmatch(text.strip()):
            return dt.date.fromisoformat(text.strip())
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a day: write it as YYYY-MM-DD, e.g. 2026-03-14"
    )


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The four commands, on the command line's subcommands."""
    text = "acknowledge an outage: its days leave the baseline and are not judged"
    ack = commands.add_parser("ack", help=text, description=text + ". Exit codes: 0 "
                              "recorded, 2 usage error (nothing recorded).")  # fmt: skip
    mute = commands.add_parser(
        "mute",
        help="send no alert for drops of an account or segment up to a day",
        description="Drops up to and including --until are still judged and shown in the "
        "check, but send no alert. Exit codes: 0 recorded, 2 usage error.",
    )
    for command in (ack, mute):
        command.add_argument("provider", choices=registry.NAMES, help="the provider")
        command.add_argument(
            "account", help="the accounts file's name for the account, or its id in the store"
        )
        command.add_argument(
            "--segment", help="only this segment (its segment_id); default: every segment"
        )
    ack.add_argument("--from", dest="first", metavar="DAY", required=True, type=day_argument,
                     help="first day acknowledged, YYYY-MM-DD (UTC)")  # fmt: skip
    ack.add_argument("--to", dest="last", metavar="DAY", type=day_argument,
                     help="last day acknowledged (included); default: the --from day")  # fmt: skip
    ack.add_argument("--reason", required=True, help="why, in words (shown in lists and checks)")
    mute.add_argument("--until", dest="last", metavar="DAY", required=True, type=day_argument,
                      help="the last day muted (included), YYYY-MM-DD (UTC)")  # fmt: skip
    mute.add_argument("--reason", default="", help="why, in words")
    listing = commands.add_parser(
        "acks",
        help="list acknowledgements and mutes",
        description=f"List the acknowledgements and mutes in force and those that ended in "
        f"the last {RECENT_DAYS} days.",
    )
    listing.add_argument("--all", action="store_true", help="every one ever recorded")
    unack = commands.add_parser(
        "unack",
        help="remove an acknowledgement or mute",
        description="Remove an acknowledgement or mute by its id (see the acks command).",
    )
    unack.add_argument("ack_id", metavar="ID", help="its id, as `acks` lists it")


def run(
    args: argparse.Namespace,
    store: SegmentStore,
    now: dt.datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Carry out one of :data:`COMMANDS`, printing what was done."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if args.command == "acks":
        print(listing(read_acks(store), now.date(), args.all, account_names(environ)))
    elif args.command == "unack":
        print(unacknowledge(store, args.ack_id))
    else:
        ack = new_ack(store, args, now, environ)
        add_ack(store, ack)
        print(recorded(ack))


def new_ack(
    store: SegmentStore,
    args: argparse.Namespace,
    now: dt.datetime,
    environ: Mapping[str, str] | None = None,
) -> Ack:
    """The acknowledgement or mute ``args`` ask for, checked; raises :class:`AckInputError`."""
    today = now.date()
    reason = (args.reason or "").strip()
    if args.command == "ack":
        first, last = args.first, args.last or args.first
        if last < first:
            raise AckInputError(
                f"--to {last} is before --from {first}: the days run from --from to --to, "
                "both included"
            )
        if not reason:
            raise AckInputError("--reason is empty: say why these days are acknowledged")
    else:
        first, last = None, args.last
        if last < today:
            raise AckInputError(
                f"the mute would end on {last}, which has passed (today is {today}, UTC): "
                "give --until a day from today on (the last day muted)"
            )
    provider = registry.get(args.provider)
    latest = store.latest_stored_counts(provider.table, max(today, last))
    account = resolve_account(provider.name, args.account, set(latest), environ)
    segment = (args.segment or "").strip() or None
    if segment is not None and account in latest:
        days = sorted({latest[account][0], *([first] if first else [])})
        _check_segment(store, provider.table, account, segment, days)
    kind = "ack" if args.command == "ack" else "mute"
    return Ack(fresh_id(store), kind, provider.name, account, segment, first, last, reason, now)


def _check_segment(
    store: SegmentStore, table: str, account: str, segment: str, days: list[dt.date]
) -> None:
    """Raise :class:`AckInputError` unless ``segment`` is listed in the account's rows of
    one of ``days`` (its latest stored day, the first day acknowledged)."""
    names: dict[str, str] = {}
    for day in days:
        rows = store.read_partition(table, day)
        if rows.empty:
            continue
        own = rows[rows["account"] == account]
        if (own["segment_id"].astype(str) == segment).any():
            return
        names.update(
            zip(own["segment_name"].astype(str), own["segment_id"].astype(str), strict=True)
        )
    shown = " or ".join(str(d) for d in days)
    hint = (
        f"; {segment!r} is the name of segment {names[segment]}: give --segment {names[segment]}"
        if segment in names
        else "; give the segment_id as the provider tables and the check show it"
    )
    raise AckInputError(f"segment {segment!r} is not listed in account {account} on {shown}{hint}")


def recorded(ack: Ack) -> str:
    """What was recorded, in words, with the id and how to remove it."""
    segment = f"segment {ack.segment_id}" if ack.segment_id else "every segment"
    where = f"{ack.provider} account {ack.account}, {segment}"
    if ack.kind == "ack":
        days = (ack.last_day - ack.first_day).days + 1 if ack.first_day else 0
        what = (
            f"acknowledged {where}: {ack.days_text()} ({days} day{'s' * (days != 1)}). These "
            "days leave the baseline and are not judged; re-run a day's no_sudden_drops check "
            "to judge it again with them."
        )
    else:
        what = (
            f"muted {where} {ack.days_text()} (included): its drops are still judged and shown "
            "in the checks, but send no alert."
        )
    return f"{what}\nid {ack.ack_id}; remove it with `{PROGRAM} unack {ack.ack_id}`"


def status(ack: Ack, today: dt.date) -> str:
    """``active`` or ``ended``. A mute is active up to its last day; an acknowledgement while
    its days are within the days a drop check reads, or before its first day (``planned``)."""
    if ack.kind == "mute":
        return "active" if ack.last_day >= today else "ended"
    if ack.first_day is not None and ack.first_day > today:
        return "planned"
    in_window = ack.last_day >= today - dt.timedelta(days=HISTORY_DAYS_NEEDED)
    return "active" if in_window else "ended"


def listing(
    acks: pd.DataFrame,
    today: dt.date,
    everything: bool = False,
    names: Mapping[tuple[str, str], str] | None = None,
) -> str:
    """A readable table of the acknowledgements and mutes: those not ended and those whose
    last day is within :data:`RECENT_DAYS` (or all), latest first."""
    names = names or {}
    records = from_frame(acks)
    if not everything:
        recent = today - dt.timedelta(days=RECENT_DAYS)
        records = [a for a in records if status(a, today) != "ended" or a.last_day >= recent]
    if not records:
        scope = "recorded" if everything else f"in force or ended in the last {RECENT_DAYS} days"
        return f"no acknowledgements or mutes {scope}" + (
            "" if everything else " (--all: every one)"
        )
    records.sort(key=lambda a: (a.last_day, a.created_at), reverse=True)
    table = pd.DataFrame(
        {
            "id": [a.ack_id for a in records],
            "kind": [a.kind for a in records],
            "status": [status(a, today) for a in records],
            "provider": [a.provider for a in records],
            "account": [_account_text(a, names) for a in records],
            "segment": [a.segment_id or "(all)" for a in records],
            "days": [a.days_text() for a in records],
            "reason": [a.reason or "" for a in records],
            "recorded (UTC)": [f"{a.created_at:%Y-%m-%d %H:%M}" for a in records],
        }
    )
    return table.to_markdown(index=False, tablefmt="simple")


def _account_text(ack: Ack, names: Mapping[tuple[str, str], str]) -> str:
    name = names.get((ack.provider, ack.account))
    return f"{name} ({ack.account})" if name and name != ack.account else ack.account


def unacknowledge(store: SegmentStore, ack_id: str) -> str:
    """Remove ``ack_id``; raises :class:`AckInputError` when no row has it."""
    ack_id = ack_id.strip()
    found = [a for a in from_frame(read_acks(store)) if a.ack_id == ack_id]
    if not found or not remove_ack(store, ack_id):
        raise AckInputError(
            f"no acknowledgement or mute has the id {ack_id!r}; `{PROGRAM} acks --all` lists them"
        )
    ack = found[0]
    what = "acknowledgement" if ack.kind == "ack" else "mute"
    segment = f"segment {ack.segment_id}" if ack.segment_id else "every segment"
    return (
        f"removed {what} {ack_id} ({ack.provider} account {ack.account}, {segment}, "
        f"{ack.days_text()})"
    )
