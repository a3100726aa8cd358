"""What every provider resource shares: the request budget, timeouts and retries, the
account's names, and the one HTTP client it builds.

A field's type is its rule (a rate is positive, a retry count zero or more): pydantic applies
it when the resource is built, and the accounts file and the environment are checked
against the same fields (see :mod:`segment_assets.config`). What only a run knows — values
read from variables — is checked by :meth:`ProviderResource.ready` before any request.
Each provider's resource (in its own module) adds its credentials and settings.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import dagster as dg
import pandas as pd
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from segment_assets.providers.errors import ConfigurationError
from segment_assets.providers.http import (
    DEFAULT_MAX_PAGES,
    ProviderHTTP,
    RetrySettings,
    validate_base_url,
)
from segment_assets.providers.registry import Provider

# the settings the HTTP client's errors name when they say what to change
_NAMED_IN_ERRORS = (
    "max_requests_per_second",
    "rate_limit_budget_seconds",
    "request_deadline_seconds",
    "max_pages",
)


class ProviderResource(dg.ConfigurableResource, ABC):
    """One account of a provider: its request budget, timeouts and retries."""

    spec: ClassVar[Provider]  # the provider's entry in the registry

    base_url: str = Field(description="The API root, an http(s) URL.")
    max_requests_per_second: PositiveFloat | None = Field(
        default=None, description="Client-side rate limit (requests per second); empty = none."
    )
    max_concurrency: PositiveInt = Field(default=1, description="Requests in flight at once.")
    connect_timeout_seconds: PositiveFloat = Field(default=5.0)
    read_timeout_seconds: PositiveFloat = Field(default=30.0)
    max_retries: NonNegativeInt = Field(
        default=6, description="Retries of one request before failing."
    )
    retry_backoff_seconds: NonNegativeFloat = Field(
        default=0.5, description="First retry's backoff; doubles per retry (capped at 30 s)."
    )
    max_retry_after_seconds: NonNegativeFloat = Field(
        default=120.0, description="Longest Retry-After the client will honour."
    )
    request_deadline_seconds: PositiveFloat | None = Field(
        default=None,
        description="Total time one request may take, body included, before it counts as a "
        "timeout (and is retried); empty = the read timeout + 5 s.",
    )
    rate_limit_budget_seconds: PositiveFloat = Field(
        default=1800.0,
        description="Total time the account may spend rate limited (from a 429 to the next "
        "request that succeeds) before its snapshot fails. 429s never use up max_retries.",
    )
    max_pages: PositiveInt = Field(
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

    @property
    def provider(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.label

    @classmethod
    def account_of(cls, identity: str) -> str:
        """The account column's value for the value of the identifying setting."""
        return identity

    def account(self) -> str:
        """The account this resource snapshots (program id, app host or app id)."""
        return self.account_of(str(getattr(self, self.spec.identity)))

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

    def ready(self) -> str:
        """Check what the run has just read from variables, before any request: every
        required setting is set, and the base URL is an http(s) URL. Returns the base URL.
        Raises ConfigurationError naming the variable (or setting) to fix."""
        required = [s.target for s in self.spec.settings if s.required]
        empty = [self._name(f) for f in required if not str(getattr(self, f) or "").strip()]
        if empty:
            raise ConfigurationError(
                f"{self.who}: {', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty; "
                "set it in the environment of the Dagster code location"
            )
        try:
            return validate_base_url(self.base_url, self._name("base_url"))
        except ValueError as exc:
            raise ConfigurationError(f"{self.who}: {exc}") from None

    def http(self, base_url: str, headers: dict[str, str], log: Any) -> ProviderHTTP:
        """The account's client; its errors never hold a secret setting's value."""
        secrets = [str(getattr(self, s.target)) for s in self.spec.settings if s.form == "secret"]
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
        """What to check when the provider refuses the credentials: the secret settings and
        the one that identifies the account."""
        secrets = [s.target for s in self.spec.settings if s.form == "secret"]
        return f"Check {' and '.join(self._name(f) for f in (*secrets, self.spec.identity))}"


class AccountsResource(dg.ConfigurableResource):
    """Several accounts of one provider (from segment_assets.yaml), snapshotted side by side,
    each with its own credentials, request budget and connection pool. Each provider's
    subclass declares ``accounts: list[<its resource>]``."""

    def all_accounts(self) -> list[ProviderResource]:
        return list(self.accounts)  # type: ignore[attr-defined]
