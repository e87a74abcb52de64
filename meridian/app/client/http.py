"""The REST API as the CLI calls it: one httpx client; an error answer becomes an ApiError
whose message is the API's own detail, made readable (a 422's field list one per line)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

# The most a list page may ask for (GET /v1/tasks caps `limit` at 500).
PAGE_MAX = 500
PARAMETER_PLACES = {"query": "query parameter", "path": "path parameter", "header": "header"}


class ApiError(Exception):
    """The API refused, failed, or could not be reached; str() is for the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def segment(value: str) -> str:
    """A path segment: a task id or region name sent as it is, whatever it contains."""
    return quote(value, safe="")


def describe_error(response: httpx.Response) -> str:
    """`404 Not Found: task not found`; a 422 lists each field on its own line."""
    head = f"{response.status_code} {response.reason_phrase}".strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail:
        return head + ":\n" + "\n".join(f"  {field_error(e)}" for e in detail)
    if isinstance(detail, dict):
        message = str(detail.get("message") or detail.get("error") or detail)
    elif isinstance(detail, str):
        message = detail
    else:
        message = response.text.strip()[:300] or "no detail given"
    if response.status_code == 401:
        message += " (set MERIDIAN_TOKEN or pass --token)"
    return f"{head}: {message}"


def field_error(error: Any) -> str:
    """One validation error: `job.resources.cpu: <msg>`, `cursor (query parameter): <msg>`."""
    if not isinstance(error, Mapping):
        return str(error)
    loc = [str(p) if not isinstance(p, int) else p for p in error.get("loc") or []]
    place = ""
    if loc and loc[0] in ("body", *PARAMETER_PLACES):
        place, loc = str(loc[0]), loc[1:]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    name = path or ("body" if place in ("body", "") else place)
    if place in PARAMETER_PLACES:
        name = f"{name} ({PARAMETER_PLACES[place]})"
    return f"{name}: {error.get('msg', 'invalid')}"


class ApiClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            response = self.http.request(
                method,
                path,
                json=body,
                params={k: v for k, v in (params or {}).items() if v is not None},
            )
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the Meridian API at {self.base_url}: {exc or type(exc).__name__}"
                " (is it running? MERIDIAN_API_URL sets the address)"
            ) from exc
        if response.is_error:
            raise ApiError(describe_error(response), response.status_code)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def list_tasks(self, limit: int, **filters: Any) -> list[Any]:
        """Up to `limit` tasks, following `next_cursor` page by page."""
        items: list[Any] = []
        cursor: str | None = None
        while len(items) < limit:
            page = self.get(
                "/v1/tasks", limit=min(limit - len(items), PAGE_MAX), cursor=cursor, **filters
            )
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor or not page["items"]:
                break
        return items[:limit]
