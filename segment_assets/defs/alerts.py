"""The channels that carry drop alerts: the Dagster log (always), a Slack incoming webhook
(``SLACK_WEBHOOK_URL``) and a generic JSON webhook (``ALERT_WEBHOOK_URL``). Webhook URLs
carry secrets: they are read through ``EnvVar``, never logged, and a delivery that fails is
reported by type and status only. What an alert says is in
:mod:`~segment_assets.defs.alert_text` (words) and :mod:`~segment_assets.defs.alert_payload`
(its JSON payload).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dagster as dg
import requests
from pydantic import Field

from segment_assets.config.errors import ConfigurationError
from segment_assets.defs.alert_payload import DEFAULT_WEBSERVER_URL, DropAlert
from segment_assets.defs.alert_text import slack_message

SLACK = "slack"
WEBHOOK = "webhook"
RECOVERIES_ENV = "ALERT_RECOVERIES"
_SWITCH = {"on": True, "true": True, "1": True, "yes": True}
_SWITCH |= {"off": False, "false": False, "0": False, "no": False}


class DropAlerts(dg.ConfigurableResource):
    """Where drop alerts go besides the Dagster log. Unset URLs switch a channel off."""

    slack_webhook_url: str | None = Field(
        default=None, description="Slack incoming webhook (SLACK_WEBHOOK_URL)."
    )
    alert_webhook_url: str | None = Field(
        default=None, description="Generic JSON webhook (ALERT_WEBHOOK_URL)."
    )
    webserver_url: str = Field(
        default=DEFAULT_WEBSERVER_URL,
        description="Base URL of the Dagster UI for links (DAGSTER_WEBSERVER_URL).",
    )
    recovery_messages: bool = Field(
        default=True,
        description=(
            "Send a 'recovered' message when a segment that alerted is back within its "
            f"recovery band ({RECOVERIES_ENV}, default on)."
        ),
    )
    connect_timeout_seconds: float = Field(default=3.0)
    read_timeout_seconds: float = Field(default=10.0)

    def channels(self) -> list[str]:
        """The webhook channels that are switched on."""
        return [
            name
            for name, url in ((SLACK, self.slack_webhook_url), (WEBHOOK, self.alert_webhook_url))
            if url
        ]

    def deliver(self, alert: DropAlert, channel: str) -> str | None:
        """Send ``alert`` on ``channel``; None when delivered, else a secret-free reason."""
        if channel == SLACK:
            url, body = self.slack_webhook_url, slack_message(alert)
        elif channel == WEBHOOK:
            url, body = self.alert_webhook_url, alert.payload()
        else:
            raise ValueError(f"unknown alert channel {channel!r}")
        if not url:
            return "not configured"
        try:
            response = requests.post(
                url,
                json=body,
                timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
            )
        except requests.RequestException as exc:
            # The exception text holds the URL (and with it the webhook's secret).
            return type(exc).__name__
        if not response.ok:
            return f"HTTP {response.status_code}"
        return None


def alerts_from_env(environ: dict[str, str] | None = None) -> DropAlerts:
    """The alert resource from the environment; webhook URLs as ``EnvVar`` when set."""
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = {
        "webserver_url": (env.get("DAGSTER_WEBSERVER_URL") or DEFAULT_WEBSERVER_URL).strip()
    }
    switch = (env.get(RECOVERIES_ENV) or "").strip().lower()
    if switch and switch not in _SWITCH:
        raise ConfigurationError(
            f"{RECOVERIES_ENV} must be on or off (true/false, 1/0, yes/no), got "
            f"{env.get(RECOVERIES_ENV)!r}; unset it for the default, on"
        )
    settings["recovery_messages"] = _SWITCH.get(switch, True)
    for field_name, variable in (
        ("slack_webhook_url", "SLACK_WEBHOOK_URL"),
        ("alert_webhook_url", "ALERT_WEBHOOK_URL"),
    ):
        if (env.get(variable) or "").strip():
            settings[field_name] = dg.EnvVar(variable)
    return DropAlerts(**settings)


def deliver_all(
    alert: DropAlert, channels: Sequence[str], alerts: DropAlerts, log: Any
) -> list[str]:
    """Deliver on each channel; return the channels that failed (to retry next tick)."""
    failed = []
    for channel in channels:
        error = alerts.deliver(alert, channel)
        if error is None:
            log.info(f"drop alert {alert.key} sent to {channel}")
        else:
            log.warning(f"drop alert {alert.key}: {channel} failed ({error}); retrying next tick")
            failed.append(channel)
    return failed
