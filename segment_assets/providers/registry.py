"""Every provider, described once.

An entry says what the rest of the project needs to know about a provider: its name (the
resource key, concurrency pool, table prefix and ``provider`` column), its words for people,
its table's own columns and when a count may be missing, what identifies one of its
accounts, the settings an account takes in the accounts file, its environment variables,
and the resource that snapshots one account. Table and asset names, labels in checks and
alerts, the accounts file's schema, the environment readers and the command line's choices
are all read from here.

The resource classes are named by import path (``module:Class``), as a package names its
entry points: a provider module imports this registry for its own entry, so the registry
imports the module only when a resource class is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any, Literal

from segment_assets.providers.columns import Column, CountRule, DefinitionRule

#: How a setting may be written in the accounts file: ``secret`` only as ``<name>_env`` (the
#: variable that holds it, never the value), ``text`` as a value or as ``<name>_env``,
#: ``value`` only as a value (numbers, flags and lists are never read from a variable).
Form = Literal["secret", "text", "value"]


@dataclass(frozen=True)
class Setting:
    """One setting an account takes in the accounts file. Its type, constraints, default
    and description are those of the resource field it sets (``field``, else ``name``)."""

    name: str
    form: Form = "value"
    required: bool = False
    field: str = ""

    @property
    def target(self) -> str:
        """The resource field this setting sets."""
        return self.field or self.name


#: The settings every provider's accounts take.
SHARED_SETTINGS: tuple[Setting, ...] = (
    Setting("api_key", "secret", required=True),
    Setting("max_rps", field="max_requests_per_second"),
    Setting("max_concurrency"),
    Setting("request_deadline_seconds"),
    Setting("rate_limit_budget_seconds"),
    Setting("max_pages"),
)

#: Settings whose ``<PREFIX>_<SETTING>`` variable is the default of every account of the
#: provider, unless the setting is required (then it is the single account's own).
PROVIDER_WIDE: tuple[str, ...] = ("base_url", "max_rps", "max_concurrency")


@dataclass(frozen=True)
class Provider:
    """One provider: see the module's docstring."""

    name: str
    label: str  # words for people: "OneSignal"
    identity: str  # the setting whose value is the ``account`` column
    account_words: str  # what that value is, in words: "app id"
    settings: tuple[Setting, ...]
    columns: tuple[Column, ...]  # the provider's own columns, between the shared ones
    count: CountRule
    resource_path: str  # "module:Class" of the resource of one account
    accounts_path: str  # "module:Class" of the resource holding several accounts
    env_prefix: str
    history_columns: tuple[str, ...] = ()  # extra columns the drop detector reads
    # where the listing says when a segment's definition last changed (None: it does not)
    definition: DefinitionRule | None = None

    @property
    def table(self) -> str:
        """The asset and its table: ``onesignal_segments``."""
        return f"{self.name}_segments"

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    def variable(self, setting: str) -> str:
        """The environment variable of a setting: ``ONESIGNAL_APP_ID``."""
        return f"{self.env_prefix}_{setting.upper()}"

    def wide_settings(self) -> tuple[Setting, ...]:
        """The settings a ``<PREFIX>_<SETTING>`` variable sets for every account (see
        :data:`PROVIDER_WIDE`)."""
        return tuple(s for s in self.settings if s.name in PROVIDER_WIDE and not s.required)

    def single_account_variables(self) -> dict[str, str]:
        """Resource field → variable, for the single account of the environment: the
        required settings (read when a run starts) and the provider-wide ones."""
        wide = self.wide_settings()
        return {s.target: self.variable(s.name) for s in self.settings if s.required or s in wide}

    @property
    def resource(self) -> type[Any]:
        """The resource class that snapshots one account."""
        return _load(self.resource_path)

    @property
    def accounts(self) -> type[Any]:
        """The resource class that holds several accounts of the accounts file."""
        return _load(self.accounts_path)


@cache
def _load(path: str) -> type[Any]:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


ACTIONHUB = Provider(
    name="actionhub",
    label="ActionHub",
    identity="program_id",
    account_words="program id",
    settings=(
        *SHARED_SETTINGS,
        Setting("program_id", "text", required=True),
        Setting("base_url", "text"),
        Setting("segment_types"),
        Setting("segment_bases"),
        Setting("min_weight"),
        Setting("force_refresh"),
        Setting("page_size"),
    ),
    columns=(
        Column("segment_type", "VARCHAR", "growth, base or discovery."),
        Column("segment_basis", "VARCHAR", "labels or assets: what the segment is broken out by."),
        Column("segment_basis_id", "VARCHAR", "The label or asset id."),
        Column("action_type", "VARCHAR", "The recommended event type."),
        Column("strength", "DOUBLE", "Average user weight in the segment."),
        Column("min_weight", "DOUBLE", "The weight cutoff used for the segment."),
    ),
    count=CountRule("user_count"),
    resource_path="segment_assets.providers.actionhub:ActionHubResource",
    accounts_path="segment_assets.providers.actionhub:ActionHubAccounts",
    env_prefix="ACTIONHUB",
)

USERCOM = Provider(
    name="usercom",
    label="User.com",
    identity="base_url",  # the app's host (and any path before /api/public)
    account_words="app host",
    settings=(*SHARED_SETTINGS, Setting("base_url", "text", required=True)),
    columns=(
        Column("description", "VARCHAR", "The segment's description."),
        Column("too_heavy", "BOOLEAN", "True when User.com could not count it reliably."),
        Column("update_interval", "INTEGER", "Minutes between User.com recounts."),
        Column("last_counted", "TIMESTAMP", "When User.com last recounted (UTC)."),
        Column("updated_at", "TIMESTAMP", "When the segment last changed (UTC)."),
    ),
    count=CountRule("object_count", uncountable_when="too_heavy", uncountable_value=True),
    resource_path="segment_assets.providers.usercom:UserComResource",
    accounts_path="segment_assets.providers.usercom:UserComAccounts",
    env_prefix="USERCOM",
    # the count is a cache: the detector needs these to leave repeated counts out
    history_columns=("last_counted", "too_heavy"),
    # updated_at also moves when User.com saves a recount (its own example shows it a
    # fraction of a second after last_counted): such a time is not a definition change
    definition=DefinitionRule("updated_at", recount_field="last_counted"),
)

ONESIGNAL = Provider(
    name="onesignal",
    label="OneSignal",
    identity="app_id",
    account_words="app id",
    settings=(
        *SHARED_SETTINGS,
        Setting("app_id", "text", required=True),
        Setting("base_url", "text"),
    ),
    columns=(
        Column("description", "VARCHAR", "The segment's description."),
        Column("source", "VARCHAR", "default, custom or quickstart."),
        Column("created_at", "TIMESTAMP", "When the segment was created (UTC)."),
        Column("filters", "VARCHAR", "The segment's filters as JSON text."),
        Column(
            "countable",
            "BOOLEAN",
            "False for user-based segments, whose count the API cannot read.",
        ),
        Column("read_only", "BOOLEAN", "True for segments that cannot be edited (defaults)."),
        Column("is_active", "BOOLEAN", "Whether OneSignal lists the segment as active."),
    ),
    count=CountRule("subscriber_count", uncountable_when="countable", uncountable_value=False),
    resource_path="segment_assets.providers.onesignal:OneSignalResource",
    accounts_path="segment_assets.providers.onesignal:OneSignalAccounts",
    env_prefix="ONESIGNAL",
    definition=DefinitionRule("updated_at"),
)

#: Every provider, in the order the project lists them.
PROVIDERS: tuple[Provider, ...] = (ACTIONHUB, USERCOM, ONESIGNAL)
NAMES: tuple[str, ...] = tuple(p.name for p in PROVIDERS)
TABLES: tuple[str, ...] = tuple(p.table for p in PROVIDERS)
#: The provider names in words: ``actionhub, usercom or onesignal``.
NAMES_IN_WORDS: str = f"{', '.join(NAMES[:-1])} or {NAMES[-1]}" if len(NAMES) > 1 else NAMES[0]


def get(name: str) -> Provider:
    """The provider named ``name``; KeyError naming the providers otherwise."""
    for provider in PROVIDERS:
        if provider.name == name:
            return provider
    raise KeyError(f"unknown provider {name!r}; the providers are {', '.join(NAMES)}")


def by_table(table: str) -> Provider:
    """The provider whose snapshots ``table`` holds; KeyError for any other table."""
    for provider in PROVIDERS:
        if provider.table == table:
            return provider
    raise KeyError(f"{table!r} is not a provider table; they are {', '.join(TABLES)}")


def label(name: str) -> str:
    """A provider's words for people (``OneSignal``); an unknown name as it is."""
    return next((p.label for p in PROVIDERS if p.name == name), name)
