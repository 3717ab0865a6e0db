"""One shared aiohttp session for the HTTP receivers, with the retry classification they share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from genai_sre.errors import DeliveryError

__all__ = ["HTTPSender", "is_retryable_status"]


def is_retryable_status(status: int) -> bool:
    """429 and 5xx are worth retrying; any other 4xx means the request itself is wrong."""
    return status == 429 or 500 <= status <= 599


class HTTPSender:
    """POSTs JSON; raises DeliveryError (retryable for 429, 5xx and network errors) on anything but 2xx."""

    def __init__(self, user_agent: str = "genai-sre") -> None:
        self._session: aiohttp.ClientSession | None = None
        self._user_agent = user_agent

    def _get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": self._user_agent})
        return self._session

    async def post_json(
        self, url: str, body: Any, *, headers: Mapping[str, str] | None = None, what: str = "receiver"
    ) -> tuple[int, str]:
        data = json.dumps(body, separators=(",", ":")).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        try:
            async with self._get().post(url, data=data, headers=hdrs) as resp:
                text = await resp.text(errors="replace")
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"{what}: cannot reach endpoint: {type(exc).__name__}: {exc}", retryable=True) from exc
        if 200 <= status <= 299:
            return status, text
        raise DeliveryError(
            f"{what}: endpoint answered HTTP {status}: {text[:200]}", retryable=is_retryable_status(status)
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
