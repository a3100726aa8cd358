"""What a provider call can fail with. Every message is safe to log: the client that raises
one has scrubbed it of every credential it holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segment_assets.providers.answers import FieldProblem


class ProviderError(RuntimeError):
    """A provider call failed. The message is safe to log: it never holds a credential."""

    def __init__(
        self,
        provider: str,
        endpoint: str,
        message: str,
        *,
        status: int | None = None,
        vendor_message: str | None = None,
        hint: str | None = None,
        problems: tuple[FieldProblem, ...] = (),
        body: Any = None,
    ) -> None:
        self.provider = provider
        self.body = body  # a 4xx answer's JSON (scrubbed), for callers that read its shape
        self.endpoint = endpoint
        self.status = status
        self.vendor_message = vendor_message
        self.hint = hint
        self.problems = problems  # the parameters a 422 rejected, when it said which
        parts = [f"{provider} {endpoint}"]
        if status is not None:
            parts.append(f"HTTP {status}")
        text = f"{' '.join(parts)}: {message}"
        if vendor_message:
            text += f" — provider said: {vendor_message}"
        if hint:
            text += f". {hint}"
        super().__init__(text)


class ProviderAuthError(ProviderError):
    """401/403, or a 400 about the credentials: they were refused. Never retried."""


class ProviderRequestError(ProviderError):
    """Another 4xx: the request itself is wrong (or the object is gone). Never retried."""


class ProviderUnavailableError(ProviderError):
    """A retryable fault persisted until the retry budget ran out."""


class ProviderRateLimitedError(ProviderUnavailableError):
    """The provider kept answering 429 until the account's rate-limit time budget ran out."""


class ProviderResponseError(ProviderError):
    """The provider answered 200 with a body this project cannot read."""


class ProviderPaginationError(ProviderResponseError):
    """A list would not end: longer than the page cap, or pages its own total contradicts."""


class UnsafeURLError(ProviderError):
    """A link or redirect pointed at a host other than the configured one."""


class BadShape(ValueError):
    """Raised by a body validator: the JSON is not what the endpoint promises."""


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""
