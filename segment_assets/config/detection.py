"""The drop detection settings in force: what the accounts file's ``detection`` sections say
(see :mod:`segment_assets.config.detection_file`), resolved level by level.

The more specific wins: a provider's values over the top level's, an account's over its
provider's, and its segment rules over the account's. Among the rules that match a segment,
an ``id`` rule wins over a ``name`` rule, and of two rules of the same kind the later in the
list wins; each rule overrides only the values it sets.

An account is known by what the store's ``account`` column holds (OneSignal app id, User.com
app host, ActionHub program id), found as the accounts file finds it. A provider account
the file does not list (the single account of the ``<PREFIX>_…`` variables) has its
provider's values. No file, or a file without ``detection``, gives the defaults.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from segment_assets.config.accounts_file import AccountsFile, account_identity, load_accounts
from segment_assets.config.detection_file import (
    DETECTION,
    SEGMENT_SETTINGS,
    SegmentRuleFile,
)
from segment_assets.detection.thresholds import DropThresholds
from segment_assets.providers import registry

_DEFAULT_THRESHOLDS = DropThresholds()
#: The sensor's default age limit: partitions more than 2 days old never alert.
DEFAULT_ALERT_MAX_AGE_DAYS = 2
#: The segment-level settings that are thresholds of the detector.
THRESHOLD_SETTINGS: tuple[str, ...] = (
    "min_drop_pct",
    "min_drop_users",
    "min_z",
    "min_history_days",
)


@dataclass(frozen=True)
class SegmentRule:
    """One rule of an account's ``segments:``: the segments it matches (by ``segment_id``
    or by a glob on the name, ``name_glob``) and the values it sets for them."""

    provider: str
    account: str  # the account's identity, as in the store's account column
    account_name: str  # its name in the accounts file
    index: int  # its place in the account's list
    segment_id: str | None
    name_glob: str | None
    values: Mapping[str, Any] = field(hash=False, compare=False)

    def where(self) -> str:
        """Its place in the accounts file: ``onesignal.web.detection.segments[0]``."""
        return f"{self.provider}.{self.account_name}.{DETECTION}.segments[{self.index}]"

    def target(self) -> str:
        """The segments it matches, in words: ``id 49382cec`` or ``name 'Test *'``."""
        if self.segment_id is not None:
            return f"id {self.segment_id}"
        return f"name {self.name_glob!r}"


@dataclass(frozen=True)
class AccountDetection:
    """The settings of one provider account (or of a provider, without ``segments``)."""

    min_drop_pct: float = _DEFAULT_THRESHOLDS.min_drop_pct
    min_drop_users: float = _DEFAULT_THRESHOLDS.min_drop_users
    min_z: float = _DEFAULT_THRESHOLDS.min_z
    min_history_days: int = _DEFAULT_THRESHOLDS.min_history_days
    alert_max_age_days: int = DEFAULT_ALERT_MAX_AGE_DAYS
    account_wide_share: float = 0.5
    account_wide_min_segments: int = 3
    definition_change_days: int = 3
    #: its segment rules: the ``name`` rules then the ``id`` rules, each in file order (the
    #: order they apply in: a later one overrides an earlier one's values)
    segments: tuple[SegmentRule, ...] = ()

    def thresholds(self) -> DropThresholds:
        """The detector's thresholds of a segment no rule matches."""
        return DropThresholds(**{name: getattr(self, name) for name in THRESHOLD_SETTINGS})

    def segment_values(self) -> dict[str, Any]:
        """The segment-level settings of a segment no rule matches: setting → value."""
        return {name: getattr(self, name) for name in SEGMENT_SETTINGS}

    def longest_alert_age_days(self) -> int:
        """The largest ``alert_max_age_days`` of any segment of the account."""
        ages = [r.values.get("alert_max_age_days", 0) for r in self.segments]
        return max([self.alert_max_age_days, *ages])

    def overridden(self, values: Mapping[str, Any]) -> AccountDetection:
        return dataclasses.replace(self, **values) if values else self


@dataclass(frozen=True)
class DetectionSettings:
    """The settings of the whole file: :meth:`account` gives one account's.

    ``written`` keeps what each level wrote (``"*"`` for the top level, a provider's name,
    or ``(provider, account)``), for showing the settings in force.
    """

    defaults: AccountDetection = AccountDetection()
    providers: Mapping[str, AccountDetection] = field(default_factory=dict)
    accounts: Mapping[tuple[str, str], AccountDetection] = field(default_factory=dict)
    account_names: Mapping[tuple[str, str], str] = field(default_factory=dict)
    written: Mapping[Any, Mapping[str, Any]] = field(default_factory=dict)

    def provider(self, provider: str) -> AccountDetection:
        """The settings of a provider's accounts that the file gives none of their own."""
        return self.providers.get(provider, self.defaults)

    def account(self, provider: str, account_id: str) -> AccountDetection:
        """The settings of one provider account, by what the ``account`` column holds."""
        found = self.accounts.get((provider, account_id))
        return self.provider(provider) if found is None else found

    def accounts_of(self, provider: str) -> dict[str, AccountDetection]:
        """The accounts of ``provider`` with settings of their own, by identity."""
        return {a: d for (p, a), d in self.accounts.items() if p == provider}

    def rules(self, providers: tuple[str, ...] | list[str]) -> list[SegmentRule]:
        """The segment rules of the accounts of ``providers``."""
        return [r for (p, _), d in self.accounts.items() if p in providers for r in d.segments]

    def one_thresholds(self, providers: tuple[str, ...] | list[str]) -> DropThresholds | None:
        """The thresholds of every segment of ``providers`` when they are the same for all
        of them and no segment rule applies (then nothing need be resolved per segment);
        else None."""
        levels = [self.provider(p) for p in providers]
        for (p, _), account in self.accounts.items():
            if p in providers:
                if account.segments:
                    return None
                levels.append(account)
        distinct = {level.thresholds() for level in levels}
        return distinct.pop() if len(distinct) == 1 else None

    def longest_alert_age_days(self, providers: tuple[str, ...] | list[str]) -> int:
        """The largest ``alert_max_age_days`` of any segment of ``providers``: an older
        partition never alerts, so it needs no judging."""
        ages = [self.provider(p).alert_max_age_days for p in providers]
        ages += [
            d.longest_alert_age_days() for (p, _), d in self.accounts.items() if p in providers
        ]
        return max(ages, default=self.defaults.alert_max_age_days)


def detection_settings_from_env(environ: Mapping[str, str] | None = None) -> DetectionSettings:
    """The detection settings of the accounts file (``SEGMENT_ASSETS_CONFIG`` or
    ``segment_assets.yaml``), read and checked now; the defaults when there is no file or
    it has no ``detection`` sections.

    Raises ConfigurationError listing every problem of the file (see
    :func:`segment_assets.config.accounts_file.load_accounts`).
    """
    accounts = load_accounts(environ)
    if accounts is None:
        return DetectionSettings()
    return detection_settings(accounts, environ)


def detection_settings(
    accounts: AccountsFile, environ: Mapping[str, str] | None = None
) -> DetectionSettings:
    """The settings a checked accounts file gives; ``environ`` holds the variables that name
    accounts (``app_id_env: …``)."""
    env = os.environ if environ is None else environ
    top = accounts.detection
    written: dict[Any, Mapping[str, Any]] = {}
    defaults = AccountDetection()
    if top is not None:
        written["*"] = top.given()
        defaults = defaults.overridden(written["*"])
    providers: dict[str, AccountDetection] = {}
    for provider in registry.NAMES:
        own = top.provider(provider) if top is not None else None
        if own is not None:
            written[provider] = own.given()
        providers[provider] = defaults.overridden(written.get(provider, {}))
    settings: dict[tuple[str, str], AccountDetection] = {}
    names: dict[tuple[str, str], str] = {}
    for provider, specs in accounts.providers.items():
        for spec in specs:
            key = (provider, account_identity(spec, env))
            names[key] = spec.name
            if spec.detection is None:
                continue
            written[key] = spec.detection.given()
            rules = _rules(provider, key[1], spec.name, spec.detection.segments)
            settings[key] = dataclasses.replace(
                providers[provider].overridden(written[key]), segments=rules
            )
    return DetectionSettings(
        defaults=defaults,
        providers=MappingProxyType(providers),
        accounts=MappingProxyType(settings),
        account_names=MappingProxyType(names),
        written=MappingProxyType(written),
    )


def _rules(
    provider: str, account: str, name: str, written: list[SegmentRuleFile]
) -> tuple[SegmentRule, ...]:
    rules = [
        SegmentRule(
            provider=provider,
            account=account,
            account_name=name,
            index=index,
            segment_id=rule.id,
            name_glob=rule.name,
            values=MappingProxyType(rule.given()),
        )
        for index, rule in enumerate(written)
    ]
    # the order they apply in: name rules, then id rules (more specific), each in file order
    return tuple(sorted(rules, key=lambda r: r.segment_id is not None))
