"""The in-memory request/response shapes passed between the server and the API handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any


@dataclass(frozen=True)
class Request:
    """What a handler needs to know about one HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    host: str

    def arg(self, name: str) -> str | None:
        """The last value of query parameter ``name`` (None when absent)."""
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def origin(self) -> str:
        return f"http://{self.host}"


@dataclass(frozen=True)
class Route:
    """A matched provider route: which provider, endpoint and account it is for."""

    provider: str
    endpoint: str
    account: str | None
    params: tuple[str, ...] = ()


@dataclass
class Response:
    """A response to send. ``data`` keeps the JSON object so faults can reshape it."""

    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: Any = None
    reset: bool = False


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, dumps(obj), "application/json", list(headers or []), data=obj)


def html_response(status: int, html: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, html.encode(), "text/html; charset=utf-8", list(headers or []))


def redirect(status: int, location: str) -> Response:
    return Response(status, b"", None, [("Location", location)])


def not_found() -> Response:
    return json_response(404, {"detail": "Not Found"})
