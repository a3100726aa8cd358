"""A drop alert as a record, and its JSON payload: what the webhook receives and what the
sensor keeps of an alert it could not deliver yet, to read back on a later tick. What an
alert says in words (the log and Slack) is :mod:`~segment_assets.defs.alert_text`.

An alert groups the drops of one provider account on one partition (``kind`` ``drops``),
says that one account could not be snapshotted while the others were (``kind``
``snapshot_failed``, with ``error`` and no drops), or that segments of an account that
alerted are back (``kind`` ``recovered``, with ``recovered`` and no drops).

The JSON payload (version 1) is documented, field by field and with an example, in the
README's "Alert channels" (``test_alerts.py`` checks that its example has the fields a
real alert sends). ``drops`` lists at most
``MAX_DROPS_PER_ALERT`` (100) segments, ERROR first; ``drop_count`` counts them all.
Within a version fields may be added, never changed;
:meth:`DropAlert.from_payload` (how the drop sensor reads back an alert it could not deliver
yet) refuses a payload of another version with :class:`AlertPayloadError` instead of reading it
as this one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pandas as pd

from segment_assets.defs.incident_text import largest
from segment_assets.detection import is_vanished
from segment_assets.detection.causes import CAUSE_COLUMN
from segment_assets.detection.incidents import ACCOUNT, summarise
from segment_assets.providers import registry

PAYLOAD_VERSION = 1
DEFAULT_WEBSERVER_URL = "http://localhost:3000"
MAX_DROPS_PER_ALERT = 100  # the JSON payload lists at most this many; drop_count has all
DROP_FIELDS = (
    "segment_id",
    "segment_name",
    "account",
    "before",
    "user_count",
    "expected",
    "drop_pct",
    "severity",
    "reason",
    "scope",
    CAUSE_COLUMN,
    "dropped_on",  # set only for a drop that began under a mute and alerts once it ended
)
RECOVERED_FIELDS = (
    "segment_id",
    "segment_name",
    "account",
    "user_count",
    "expected",
    "drop_pct",
    "low",
    "vanished",
    "opened_on",
    "scope",
)


def asset_url(webserver_url: str, asset: str, partition: str) -> str:
    """The partition's page in the Dagster UI (materialisation, checks and their metadata)."""
    base = webserver_url.rstrip("/")
    return f"{base}/assets/{quote(asset)}?view=partitions&partition={quote(partition)}"


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and pd.isna(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return round(value, 1)
    if isinstance(value, dt.date):  # a day, as the ISO text the payload carries
        return value.isoformat()
    return value


DROPS = "drops"
SNAPSHOT_FAILED = "snapshot_failed"
RECOVERED = "recovered"
KINDS = (DROPS, SNAPSHOT_FAILED, RECOVERED)
PAYLOAD_FIELDS = (
    "version",
    "asset",
    "provider",
    "account",
    "partition",
    "url",
    "drops",
    "drop_count",
    "error_count",
)


class AlertPayloadError(ValueError):
    """A payload this code cannot read back: another version, or fields of version 1 missing."""


@dataclass(frozen=True)
class DropAlert:
    """One message: the drops of one provider account on one partition, (``kind``
    ``snapshot_failed``) an account that could not be snapshotted while the others were, or
    (``kind`` ``recovered``) the account's segments that are back after a drop alert."""

    asset: str
    provider: str
    account: str | None
    partition: str
    url: str
    drops: tuple[dict[str, Any], ...]
    drop_count: int
    errors: int = field(default=0)
    account_name: str | None = None
    kind: str = DROPS
    error: str | None = None
    incident: dict[str, Any] | None = None
    vanished: dict[str, Any] | None = None
    recovered: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_drops(
        cls,
        asset: str,
        partition: str,
        drops: pd.DataFrame,
        webserver_url: str,
        account_name: str | None = None,
    ) -> DropAlert:
        """Build the alert from a :func:`segment_assets.defs.drops.flag_drops` frame (the drops
        of one account; ``account_name`` is its name in words, if it has one)."""
        provider = registry.by_table(asset).name
        accounts = sorted(drops["account"].dropna().astype(str).unique())
        summary = summarise(drops)
        gone = is_vanished(drops)
        return cls(
            asset=asset,
            provider=provider,
            account=", ".join(accounts) if accounts else None,
            partition=partition,
            url=asset_url(webserver_url, asset, partition),
            drops=_records(drops.head(MAX_DROPS_PER_ALERT)),
            drop_count=len(drops),
            errors=int((drops["severity"] == "ERROR").sum()),
            account_name=account_name or None,
            incident={
                "scope": summary.scope,
                "fell": summary.fell,
                "of": summary.of,
                "median_drop_pct": summary.median_drop_pct,
                "largest": list(_records(largest(drops[~gone]))),
            },
            vanished={
                "scope": summary.vanished_scope,
                "count": summary.vanished,
                "of": summary.vanished_of,
                "users": _json_value(int(drops.loc[gone, "expected"].fillna(0).sum())),
                "largest": list(_records(largest(drops[gone]))),
            },
        )

    @classmethod
    def recoveries(
        cls,
        asset: str,
        partition: str,
        back: pd.DataFrame,
        webserver_url: str,
        account_name: str | None = None,
    ) -> DropAlert:
        """The segments of one account back on ``partition`` (a frame of
        :data:`RECOVERED_FIELDS`: see :mod:`segment_assets.defs.incident_log`)."""
        accounts = sorted(back["account"].dropna().astype(str).unique())
        return cls(
            asset=asset,
            provider=registry.by_table(asset).name,
            account=", ".join(accounts) if accounts else None,
            partition=partition,
            url=asset_url(webserver_url, asset, partition),
            drops=(),
            drop_count=0,
            account_name=account_name or None,
            kind=RECOVERED,
            recovered=tuple(
                {name: _json_value(row.get(name)) for name in RECOVERED_FIELDS}
                for row in back.to_dict("records")
            ),
        )

    @classmethod
    def snapshot_failed(
        cls,
        asset: str,
        partition: str,
        account: str,
        error: str,
        webserver_url: str,
        account_name: str | None = None,
    ) -> DropAlert:
        """An account whose snapshot failed on a partition that stored the other accounts."""
        return cls(
            asset=asset,
            provider=registry.by_table(asset).name,
            account=account,
            partition=partition,
            url=asset_url(webserver_url, asset, partition),
            drops=(),
            drop_count=0,
            account_name=account_name or None,
            kind=SNAPSHOT_FAILED,
            error=error,
        )

    @property
    def account_wide(self) -> bool:
        """Whether the drops or the vanished segments are an account-wide incident."""
        return any(
            (part or {}).get("scope") == ACCOUNT and (part or {}).get("largest")
            for part in (self.incident, self.vanished)
        )

    @property
    def key(self) -> str:
        key = f"{self.asset}|{self.partition}|{self.account or ''}"
        return key if self.kind == DROPS else f"{key}|{self.kind}"

    def payload(self) -> dict[str, Any]:
        """The documented JSON body (version 1)."""
        body = {
            "version": PAYLOAD_VERSION,
            "kind": self.kind,
            "partition": self.partition,
            "provider": self.provider,
            "account": self.account,
            "account_name": self.account_name,
            "asset": self.asset,
            "url": self.url,
            "drop_count": self.drop_count,
            "error_count": self.errors,
            "truncated": self.drop_count > len(self.drops),
            "drops": list(self.drops),
        }
        if self.kind == SNAPSHOT_FAILED:
            body["error"] = self.error
        if self.kind == DROPS:
            body["incident"] = self.incident
            body["vanished"] = self.vanished
        if self.kind == RECOVERED:
            body["recovered_count"] = len(self.recovered)
            body["recovered"] = list(self.recovered)
        return body

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> DropAlert:
        """The alert a :meth:`payload` describes. Fields added later within the version are
        ignored; a payload of another version, or without a field of this one, raises
        :class:`AlertPayloadError`."""
        version = payload.get("version")
        if version is None:
            raise AlertPayloadError("the alert payload has no version")
        if type(version) is not int or version != PAYLOAD_VERSION:
            raise AlertPayloadError(
                f"the alert payload has version {version!r}, and this code reads version "
                f"{PAYLOAD_VERSION} only"
            )
        missing = [name for name in PAYLOAD_FIELDS if name not in payload]
        if missing:
            raise AlertPayloadError(
                f"the version {PAYLOAD_VERSION} alert payload lacks {', '.join(missing)}"
            )
        kind = payload.get("kind", DROPS)  # payloads from before snapshot_failed have no kind
        if kind not in KINDS:
            raise AlertPayloadError(f"the alert payload has an unknown kind {kind!r}")
        drops = tuple(payload["drops"])
        return cls(
            asset=payload["asset"],
            provider=payload["provider"],
            account=payload["account"],
            partition=payload["partition"],
            url=payload["url"],
            drops=drops,
            drop_count=payload["drop_count"],
            errors=payload["error_count"],
            account_name=payload.get("account_name"),
            kind=payload.get("kind", DROPS),
            error=payload.get("error"),
            incident=payload.get("incident"),
            vanished=payload.get("vanished"),
            recovered=tuple(payload.get("recovered") or ()),
        )


def _records(drops: pd.DataFrame) -> tuple[dict[str, Any], ...]:
    """Drops as the payload lists them (JSON values, with ``vanished``)."""
    shown = drops.copy()
    shown["vanished"] = is_vanished(shown) if len(shown) else pd.Series(dtype=bool)
    return tuple(
        {name: _json_value(row.get(name)) for name in (*DROP_FIELDS, "vanished")}
        for row in shown.to_dict("records")
    )
