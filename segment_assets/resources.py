"""Provider resources: credentials (from ``EnvVar``), base URLs, request budget.

Each resource turns its settings into a :class:`~segment_assets.http.ProviderHTTP` client
and calls its provider module; nothing here knows about partitions or storage.
"""

from __future__ import annotations

import datetime as dt
import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import dagster as dg
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator

from segment_assets.http import DEFAULT_MAX_PAGES, ProviderHTTP, RetrySettings, validate_base_url
from segment_assets.providers import actionhub, onesignal, usercom


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


# the settings the HTTP client's errors name when they say what to change
_NAMED_IN_ERRORS = (
    "max_requests_per_second",
    "rate_limit_budget_seconds",
    "request_deadline_seconds",
    "max_pages",
)


class ProviderResource(dg.ConfigurableResource, ABC):
    """What every provider shares: request budget, timeouts, retries."""

    provider: ClassVar[str]
    label: ClassVar[str]

    max_requests_per_second: float | None = Field(
        default=None, description="Client-side rate limit (requests per second); empty = none."
    )
    max_concurrency: int = Field(default=1, description="Requests in flight at once.")
    connect_timeout_seconds: float = Field(default=5.0)
    read_timeout_seconds: float = Field(default=30.0)
    max_retries: int = Field(default=6, description="Retries of one request before failing.")
    retry_backoff_seconds: float = Field(
        default=0.5, description="First retry's backoff; doubles per retry (capped at 30 s)."
    )
    max_retry_after_seconds: float = Field(
        default=120.0, description="Longest Retry-After the client will honour."
    )
    request_deadline_seconds: float | None = Field(
        default=None,
        description="Total time one request may take, body included, before it counts as a "
        "timeout (and is retried); empty = the read timeout + 5 s.",
    )
    rate_limit_budget_seconds: float = Field(
        default=1800.0,
        description="Total time the account may spend rate limited (from a 429 to the next "
        "request that succeeds) before its snapshot fails. 429s never use up max_retries.",
    )
    max_pages: int = Field(
        default=DEFAULT_MAX_PAGES,
        description="The longest list, in pages, read before the snapshot fails (a provider "
        "whose pages never end).",
    )
    env_names: dict[str, str] = Field(
        default_factory=dict,
        description="Field → environment variable, so errors name the variable to fix.",
    )
    name: str = Field(
        default="",
        description="The account's name in segment_assets.yaml (empty for the single account "
        "of the <P>_… variables).",
    )
    label_text: str = Field(
        default="", description="Words naming the account in logs and alerts (default: name)."
    )

    @abstractmethod
    def account(self) -> str:
        """The account this resource snapshots (program id, app host or app id)."""

    def all_accounts(self) -> list[ProviderResource]:
        """The accounts behind this resource: just this one."""
        return [self]

    @property
    def who(self) -> str:
        """``OneSignal`` for the single account, ``OneSignal brand_b`` for a named one."""
        return f"{self.label} {self.name}" if self.name else self.label

    @property
    def words(self) -> str:
        """The account's words: its label, else its name; empty for the single account."""
        return self.label_text or self.name

    def describe(self) -> str:
        """The account in words: ``OneSignal brand_b (e4b8d2c6-…)`` or ``OneSignal <app id>``."""
        if self.words:
            return f"{self.label} {self.words} ({self.account()})"
        return f"{self.label} {self.account()}"

    @abstractmethod
    def snapshot(self, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
        """Fetch every segment's current count as the normalised frame."""

    # -- shared ------------------------------------------------------------------------
    def _name(self, field: str) -> str:
        return self.env_names.get(field, f"{type(self).__name__}.{field}")

    def require(self, *fields: str) -> None:
        """Fail before any request if a required setting is empty, naming its variable."""
        empty = [self._name(f) for f in fields if not str(getattr(self, f) or "").strip()]
        if empty:
            raise ConfigurationError(
                f"{self.who}: {', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty; "
                "set it in the environment of the Dagster code location"
            )

    def check_budget(self) -> None:
        problems = []
        if self.max_requests_per_second is not None and self.max_requests_per_second <= 0:
            problems.append(
                f"{self._name('max_requests_per_second')} must be positive, "
                f"got {self.max_requests_per_second}"
            )
        if self.max_concurrency < 1:
            problems.append(
                f"{self._name('max_concurrency')} must be at least 1, got {self.max_concurrency}"
            )
        if self.max_retries < 0 or self.read_timeout_seconds <= 0 or self.retry_backoff_seconds < 0:
            problems.append("max_retries and retry_backoff_seconds must be ≥ 0, timeouts positive")
        positive = {
            "request_deadline_seconds": self.request_deadline_seconds,
            "rate_limit_budget_seconds": self.rate_limit_budget_seconds,
            "max_pages": self.max_pages,
        }
        for field, value in positive.items():
            if value is not None and value <= 0:
                problems.append(f"{self._name(field)} must be positive, got {value}")
        if problems:
            raise ConfigurationError(f"{self.who}: " + "; ".join(problems))

    def base(self, url: str) -> str:
        try:
            return validate_base_url(url, self._name("base_url"))
        except ValueError as exc:
            raise ConfigurationError(f"{self.who}: {exc}") from None

    def http(self, base_url: str, headers: dict[str, str], secrets: list[str], log: Any):
        return ProviderHTTP(
            self.provider,
            base_url,
            headers,
            secrets=secrets,
            max_rps=self.max_requests_per_second,
            max_concurrency=self.max_concurrency,
            retry=RetrySettings(
                max_retries=self.max_retries,
                backoff_factor=self.retry_backoff_seconds,
                backoff_jitter=self.retry_backoff_seconds,
                retry_after_max=self.max_retry_after_seconds,
                connect_timeout=self.connect_timeout_seconds,
                read_timeout=self.read_timeout_seconds,
                deadline=self.request_deadline_seconds,
                rate_limit_budget=self.rate_limit_budget_seconds,
            ),
            auth_hint=self.auth_hint(),
            log=log,
            account=self.describe(),
            settings={field: self._name(field) for field in _NAMED_IN_ERRORS},
            max_pages=self.max_pages,
        )

    def auth_hint(self) -> str:
        names = [self._name(f) for f in ("api_key", "program_id", "app_id") if hasattr(self, f)]
        return f"Check {' and '.join(names)}"


class ActionHubResource(ProviderResource):
    """ActionHub (Data Baller) segments of one program."""

    provider: ClassVar[str] = actionhub.PROVIDER
    label: ClassVar[str] = "ActionHub"

    api_key: str = Field(description="ActionHub API key (header actionhub-key).")
    program_id: str = Field(description="ActionHub program id (header program-id).")
    base_url: str = Field(default=actionhub.DEFAULT_BASE_URL)
    segment_types: list[str] = Field(default_factory=lambda: list(actionhub.SEGMENT_TYPES))
    segment_bases: list[str] = Field(default_factory=lambda: list(actionhub.SEGMENT_BASES))
    min_weight: float = Field(default=0.5)
    force_refresh: bool = Field(
        default=False, description="Ask for a recount (once per list, with its first page)."
    )
    page_size: int = Field(default=50, description="Segments per page, 1 to 100.")
    max_requests_per_second: float | None = Field(
        default=10.0, description="Requests per second (ACTIONHUB_MAX_RPS); empty = no limit."
    )
    max_concurrency: int = Field(
        default=4, description="Pages in flight at once (ACTIONHUB_MAX_CONCURRENCY)."
    )

    # refused when the definitions load, not at the first request
    @field_validator("segment_types", "segment_bases", "min_weight", "page_size")
    @classmethod
    def _as_the_api_allows(cls, value: Any, info: ValidationInfo) -> Any:
        try:
            actionhub.SETTING_CHECKS[str(info.field_name)](value)
        except ValueError as exc:
            raise ValueError(f"ActionHub {info.field_name} {exc}") from None
        return value

    def account(self) -> str:
        return self.program_id

    def query(self) -> actionhub.ActionHubQuery:
        try:
            return actionhub.ActionHubQuery(
                program_id=self.program_id,
                segment_types=tuple(self.segment_types),
                segment_bases=tuple(self.segment_bases),
                min_weight=self.min_weight,
                force_refresh=self.force_refresh,
                page_size=self.page_size,
            )
        except ValueError as exc:
            raise ConfigurationError(f"{self.who}: {exc}") from None

    def snapshot(self, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
        self.require("api_key", "program_id")
        self.check_budget()
        query = self.query()
        base = self.base(self.base_url)
        headers = actionhub.headers(self.api_key, self.program_id)
        with self.http(base, headers, [self.api_key], log) as client:
            return actionhub.fetch_actionhub(
                client,
                query,
                snapshot_date=snapshot_date,
                max_concurrency=self.max_concurrency,
                log=log,
                setting_name=self._name,
            )


class UserComResource(ProviderResource):
    """User.com segments of one app (``https://<subdomain>.user.com/api/public``)."""

    provider: ClassVar[str] = usercom.PROVIDER
    label: ClassVar[str] = "User.com"

    api_key: str = Field(description="User.com API token (header Authorization: Token …).")
    base_url: str = Field(description="https://<app subdomain>.user.com/api/public")
    max_requests_per_second: float | None = Field(
        default=5.0, description="Requests per second (USERCOM_MAX_RPS); empty = no limit."
    )

    def account(self) -> str:
        return usercom.account_of(self.base_url)

    def snapshot(self, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
        self.require("api_key", "base_url")
        self.check_budget()
        base = self.base(self.base_url)
        with self.http(base, usercom.headers(self.api_key), [self.api_key], log) as client:
            return usercom.fetch_usercom(client, snapshot_date=snapshot_date, log=log)


class OneSignalResource(ProviderResource):
    """OneSignal segments of one app, one view request per segment."""

    provider: ClassVar[str] = onesignal.PROVIDER
    label: ClassVar[str] = "OneSignal"

    api_key: str = Field(description="OneSignal App API key (header Authorization: Key …).")
    app_id: str = Field(description="OneSignal app id (UUID).")
    base_url: str = Field(default=onesignal.DEFAULT_BASE_URL)
    max_requests_per_second: float | None = Field(
        default=0.9,
        description="Requests per second (ONESIGNAL_MAX_RPS); OneSignal documents about one "
        "view request per second per app, and a strict limit punishes a client at exactly it.",
    )
    max_concurrency: int = Field(
        default=2, description="Views in flight at once (ONESIGNAL_MAX_CONCURRENCY)."
    )

    def account(self) -> str:
        return self.app_id

    def snapshot(self, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
        self.require("api_key", "app_id")
        self.check_budget()
        base = self.base(self.base_url)
        with self.http(base, onesignal.headers(self.api_key), [self.api_key], log) as client:
            return onesignal.fetch_onesignal(
                client,
                self.app_id,
                snapshot_date=snapshot_date,
                max_concurrency=self.max_concurrency,
                log=log,
            )


class AccountsResource(dg.ConfigurableResource):
    """Several accounts of one provider (from segment_assets.yaml), snapshotted side by side,
    each with its own credentials, request budget and connection pool."""

    def all_accounts(self) -> list[ProviderResource]:
        return list(self.accounts)  # type: ignore[attr-defined]


class ActionHubAccounts(AccountsResource):
    """The ActionHub programs listed in segment_assets.yaml."""

    accounts: list[ActionHubResource] = Field(description="One entry per program.")


class UserComAccounts(AccountsResource):
    """The User.com apps listed in segment_assets.yaml."""

    accounts: list[UserComResource] = Field(description="One entry per app.")


class OneSignalAccounts(AccountsResource):
    """The OneSignal apps listed in segment_assets.yaml."""

    accounts: list[OneSignalResource] = Field(description="One entry per app.")


ACCOUNTS_CLASSES: dict[str, type[AccountsResource]] = {
    "actionhub": ActionHubAccounts,
    "usercom": UserComAccounts,
    "onesignal": OneSignalAccounts,
}

RESOURCE_CLASSES: dict[str, type[ProviderResource]] = {
    "actionhub": ActionHubResource,
    "usercom": UserComResource,
    "onesignal": OneSignalResource,
}


def _number(name: str, kind: type, environ: dict[str, str]) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {raw!r}")
    return value


def budget_from_env(prefix: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``<P>_MAX_RPS`` and ``<P>_MAX_CONCURRENCY`` as resource fields (only those set)."""
    env = dict(os.environ if environ is None else environ)
    out: dict[str, Any] = {}
    rps = _number(f"{prefix}_MAX_RPS", float, env)
    if rps is not None:
        out["max_requests_per_second"] = rps
    concurrency = _number(f"{prefix}_MAX_CONCURRENCY", int, env)
    if concurrency is not None:
        out["max_concurrency"] = concurrency
    return out


WORKERS_ENV = "SEGMENT_ASSETS_WORKERS"
DEFAULT_WORKERS = 64


def workers_from_env(environ: dict[str, str] | None = None) -> int:
    """``SEGMENT_ASSETS_WORKERS``: the requests one provider step has in flight at once,
    across all its accounts (the threads of its scheduler's pool); default 64."""
    env = dict(os.environ if environ is None else environ)
    return _number(WORKERS_ENV, int, env) or DEFAULT_WORKERS


def provider_resources_from_env(
    environ: dict[str, str] | None = None,
) -> dict[str, ProviderResource]:
    """The three single-account resources, secrets as ``EnvVar`` (the UI shows names, never
    values).

    Optional settings (base URLs, ``<P>_MAX_RPS``, ``<P>_MAX_CONCURRENCY``) are read now and
    fall back to the documented defaults.
    """
    env = dict(os.environ if environ is None else environ)

    def budget(prefix: str) -> dict[str, Any]:
        out = budget_from_env(prefix, env)
        out["env_names"] = {
            "api_key": f"{prefix}_API_KEY",
            "program_id": f"{prefix}_PROGRAM_ID",
            "app_id": f"{prefix}_APP_ID",
            "base_url": f"{prefix}_BASE_URL",
            "max_requests_per_second": f"{prefix}_MAX_RPS",
            "max_concurrency": f"{prefix}_MAX_CONCURRENCY",
        }
        return out

    return {
        "actionhub": ActionHubResource(
            api_key=dg.EnvVar("ACTIONHUB_API_KEY"),
            program_id=dg.EnvVar("ACTIONHUB_PROGRAM_ID"),
            base_url=env.get("ACTIONHUB_BASE_URL") or actionhub.DEFAULT_BASE_URL,
            **budget("ACTIONHUB"),
        ),
        "usercom": UserComResource(
            api_key=dg.EnvVar("USERCOM_API_KEY"),
            base_url=dg.EnvVar("USERCOM_BASE_URL"),
            **budget("USERCOM"),
        ),
        "onesignal": OneSignalResource(
            api_key=dg.EnvVar("ONESIGNAL_API_KEY"),
            app_id=dg.EnvVar("ONESIGNAL_APP_ID"),
            base_url=env.get("ONESIGNAL_BASE_URL") or onesignal.DEFAULT_BASE_URL,
            **budget("ONESIGNAL"),
        ),
    }
