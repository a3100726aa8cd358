"""Account-wide incidents: many segments of one provider account falling on the same day.

A broken integration or a key that suddenly returns zeros makes most segments of an account
drop at once. Such a day is one incident of the account, not hundreds of segment alerts:
when at least ``account_wide_share`` (default 0.5) of the account's segments judged that
day, and at least ``account_wide_min_segments`` (default 3), newly dropped, each of those
drops gets ``scope`` ``"account"``; otherwise ``"segment"``. Vanished segments are counted
apart, against the segments the account listed on its previous snapshot: many segments
vanishing together are an account-wide incident too.

*Judged* is meant as the detector means it (see :mod:`segment_assets.detection`): listed on
the day with a count that is an observation (not NULL, not ``too_heavy``, not a repeated
User.com cache) and with at least ``min_history_days`` observations in the window before.

Pure pandas/numpy; the thresholds come in as parameters (per account through ``rule_of``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Protocol

import numpy as np
import pandas as pd

from segment_assets.detection.output import is_vanished
from segment_assets.detection.thresholds import TODAY, DropThresholds
from segment_assets.detection.window import Window

SEGMENT = "segment"
ACCOUNT = "account"
SCOPES = (SEGMENT, ACCOUNT)
#: Default share of an account's judged segments that must drop on one day.
ACCOUNT_WIDE_SHARE = 0.5
#: Default least number of segments that must drop (so two of three is no incident).
ACCOUNT_WIDE_MIN_SEGMENTS = 3
ACCOUNT_KEY = ["provider", "account"]
#: The columns :func:`mark_scope` adds: the scope, and the number of the account's segments
#: the share was taken of (judged that day, or for a vanished segment, listed on the
#: account's previous snapshot).
SCOPE = "scope"
ACCOUNT_SEGMENTS = "account_segments"


class AccountWideRule(Protocol):
    """The two numbers of the rule for one account (the detection settings' per-account
    object has them)."""

    @property
    def account_wide_share(self) -> float: ...

    @property
    def account_wide_min_segments(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class AccountWide:
    """The rule with its defaults; a share outside (0, 1] or a count below 1 is refused."""

    account_wide_share: float = ACCOUNT_WIDE_SHARE
    account_wide_min_segments: int = ACCOUNT_WIDE_MIN_SEGMENTS

    def __post_init__(self) -> None:
        if not 0 < self.account_wide_share <= 1:
            raise ValueError(
                f"account_wide_share must be above 0 and at most 1, got {self.account_wide_share}"
            )
        if self.account_wide_min_segments < 1:
            raise ValueError(
                "account_wide_min_segments must be at least 1, got "
                f"{self.account_wide_min_segments}"
            )


def account_sizes(
    history: pd.DataFrame, as_of: dt.date, min_history_days: int | None = None
) -> pd.DataFrame:
    """Per provider account listed on ``as_of``: ``judged``, its segments judged that day,
    and ``listed_before``, its segments listed on its previous snapshot day (0 if none).

    ``history`` is what :func:`~segment_assets.detection.find_drops` reads; an account with
    no row on ``as_of`` is left out (the detector does not judge it).
    """
    if min_history_days is None:
        min_history_days = DropThresholds().min_history_days
    win = Window.build(history, as_of)
    if win is None:
        return _sizes_frame([], [], np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    observed = ~np.isnan(win.observed)
    seen_before = observed[:, :TODAY].sum(axis=1)
    judged = observed[:, TODAY] & (seen_before >= min_history_days)
    n_groups = int(win.group.max()) + 1
    listed_today = np.bincount(win.group, weights=win.present[:, TODAY], minlength=n_groups) > 0
    # each account's previous snapshot day: the last day before as_of any segment was listed
    days = np.where(win.present[:, :TODAY], np.arange(TODAY), -1).max(axis=1)
    previous = np.full(n_groups, -1)
    np.maximum.at(previous, win.group, days)
    rows = np.arange(win.present.shape[0])
    was_listed = (previous[win.group] >= 0) & win.present[rows, np.maximum(previous[win.group], 0)]
    groups = np.flatnonzero(listed_today)
    # a segment of each account listed on as_of names it
    listed = np.flatnonzero(win.present[:, TODAY])
    named_by = np.full(n_groups, -1)
    named_by[win.group[listed]] = listed
    pos = win.row_of[named_by[groups], TODAY]
    return _sizes_frame(
        _text(win.rows["provider"][pos]),
        _text(win.rows["account"][pos]),
        np.bincount(win.group, weights=judged, minlength=n_groups)[groups].astype(np.int64),
        np.bincount(win.group, weights=was_listed, minlength=n_groups)[groups].astype(np.int64),
    )


def _text(values: object) -> list[str]:
    return [str(v) for v in np.asarray(values, dtype=object)]


def _sizes_frame(
    providers: list[str], accounts: list[str], judged: np.ndarray, listed_before: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "provider": pd.Series(providers, dtype=object),
            "account": pd.Series(accounts, dtype=object),
            "judged": pd.Series(judged, dtype=np.int64),
            "listed_before": pd.Series(listed_before, dtype=np.int64),
        }
    )


def mark_scope(
    drops: pd.DataFrame,
    sizes: pd.DataFrame,
    rule_of: Callable[[str, str], AccountWideRule] | None = None,
) -> pd.DataFrame:
    """``drops`` (a :func:`~segment_assets.detection.find_drops` frame) with ``scope``
    (``"account"`` or ``"segment"``) and ``account_segments`` (how many of the account's
    segments the share was taken of; NA when the account is not in ``sizes``).

    ``sizes`` is :func:`account_sizes` of the same day; ``rule_of(provider, account)``
    gives each account's rule (default :class:`AccountWide`'s defaults).
    """
    out = drops.copy()
    if out.empty:
        out[SCOPE] = pd.Series(dtype=object)
        out[ACCOUNT_SEGMENTS] = pd.Series(dtype="Int64")
        return out
    gone = is_vanished(out).to_numpy()
    key = out[ACCOUNT_KEY].astype(str)
    known = sizes.assign(
        provider=sizes["provider"].astype(str), account=sizes["account"].astype(str)
    ).set_index(ACCOUNT_KEY)
    index = pd.MultiIndex.from_frame(key)
    judged = known["judged"].reindex(index).to_numpy(dtype=float)
    listed = known["listed_before"].reindex(index).to_numpy(dtype=float)
    of = np.where(gone, listed, judged)
    # how many of its kind (fell or vanished) the row's account has
    kind = pd.Series(np.where(gone, "vanished", "fell"), index=out.index)
    together = kind.groupby([key["provider"], key["account"], kind]).transform("size").to_numpy()
    rule = rule_of or (lambda _provider, _account: AccountWide())
    accounts = pd.MultiIndex.from_frame(key.drop_duplicates())
    rules = [rule(provider, account) for provider, account in accounts]
    share = pd.Series([r.account_wide_share for r in rules], index=accounts).reindex(index)
    least = pd.Series([r.account_wide_min_segments for r in rules], index=accounts).reindex(index)
    share, least = share.to_numpy(dtype=float), least.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        wide = (together >= least) & (together >= share * of)
    out[SCOPE] = np.where(wide & ~np.isnan(of), ACCOUNT, SEGMENT).astype(object)
    out[ACCOUNT_SEGMENTS] = pd.array(np.where(np.isnan(of), np.nan, of), dtype="Float64").astype(
        "Int64"
    )
    return out


def scope_drops(
    drops: pd.DataFrame,
    history: pd.DataFrame,
    as_of: dt.date,
    rule_of: Callable[[str, str], AccountWideRule] | None = None,
    min_history_days: int | None = None,
) -> pd.DataFrame:
    """:func:`mark_scope` of ``drops`` with the account sizes of ``history`` on ``as_of``
    (only read when something dropped)."""
    if drops.empty:
        return mark_scope(drops, _sizes_frame([], [], np.array([]), np.array([])), rule_of)
    return mark_scope(drops, account_sizes(history, as_of, min_history_days), rule_of)


@dataclasses.dataclass(frozen=True)
class Incident:
    """What an alert says of an account's day: how many of how many segments fell and by a
    median of how much, and how many of how many vanished, with each kind's scope."""

    scope: str
    fell: int
    of: int | None
    median_drop_pct: float | None
    vanished_scope: str
    vanished: int
    vanished_of: int | None


def summarise(drops: pd.DataFrame) -> Incident:
    """The :class:`Incident` of one account's drops (a :func:`mark_scope` frame; without
    its columns every drop counts as the segment's own)."""
    gone = is_vanished(drops) if len(drops) else pd.Series(dtype=bool)
    fell, vanished = drops[~gone], drops[gone]
    return Incident(
        scope=_scope(fell),
        fell=len(fell),
        of=_of(fell),
        median_drop_pct=(
            round(float(fell["drop_pct"].median()), 1) if fell["drop_pct"].notna().any() else None
        ),
        vanished_scope=_scope(vanished),
        vanished=len(vanished),
        vanished_of=_of(vanished),
    )


def _scope(rows: pd.DataFrame) -> str:
    if SCOPE in rows and (rows[SCOPE] == ACCOUNT).any():
        return ACCOUNT
    return SEGMENT


def _of(rows: pd.DataFrame) -> int | None:
    if ACCOUNT_SEGMENTS not in rows or not rows[ACCOUNT_SEGMENTS].notna().any():
        return None
    return int(rows[ACCOUNT_SEGMENTS].dropna().max())
