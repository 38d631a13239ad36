"""The WeCom API client every part of the product uses: wechatpy's enterprise client on
WECOM_API_BASE_URL, its access token kept in the cache every process shares (Redis or the
PostgreSQL cache table), and `wecom_call`, which waits and retries when WeCom says it is busy
or over its rate limit. wechatpy itself fetches a new token and repeats the call on 40001,
40014 and 42001."""

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import transaction
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Seconds a WeCom call may take (each read of its answer): an opt-out waits at most this long
# for a call in flight to its customer (campaigns.services.channel_calls.consent_hold).
CALL_TIMEOUT_SECONDS = 10

# errcodes that say "later", not "no": -1 system busy, 45009 API rate limit (per corp and
# app), 45033 too many concurrent calls.
ERRCODE_SYSTEM_BUSY = -1
ERRCODE_RATE_LIMITED = 45009
ERRCODE_TOO_MANY_CONCURRENT = 45033
RETRYABLE_ERRCODES = frozenset(
    {ERRCODE_SYSTEM_BUSY, ERRCODE_RATE_LIMITED, ERRCODE_TOO_MANY_CONCURRENT}
)
# 60011: the app may not see this staff member's or chat's data (可见范围): skipped, counted.
ERRCODE_NO_PRIVILEGE = 60011
# 84061: the external contact is not (any more) this staff member's customer.
ERRCODE_NOT_EXTERNAL_CONTACT = 84061

# Waits between attempts of a call WeCom refused for now: 1, 2, 4, 8, 16 s, then give up.
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0)


class SharedSessionStorage(SessionStorage):  # type: ignore[misc]
    """wechatpy's token storage on Django's cache: one token per corp and secret for every
    worker and web process, instead of one per process (WeCom limits how often tokens are
    fetched).

    A token is written to the shared cache once the caller's transaction commits: the
    PostgreSQL cache writes on the caller's connection, and a row written inside a transaction
    that then waits on WeCom (a campaign's call holds its transaction open) would make every
    other process wanting a token wait for it. Until then this process keeps it to itself."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._own: dict[str, tuple[Any, float]] = {}  # key -> (value, monotonic expiry)

    def get(self, key: str, default: Any = None) -> Any:
        own = self._own.get(key)
        if own is not None and own[1] > time.monotonic():
            return own[0]
        return shared_cache.get(f"{self.prefix}:{key}", default)

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        # A token is used until 60 s before its end (wechatpy): keep it no longer than WeCom.
        lifetime = float(ttl) if ttl else float("inf")
        self._own[key] = (value, time.monotonic() + lifetime)
        transaction.on_commit(lambda: shared_cache.set(f"{self.prefix}:{key}", value, ttl))

    def delete(self, key: str) -> None:
        self._own.pop(key, None)
        transaction.on_commit(lambda: shared_cache.delete(f"{self.prefix}:{key}"))


class WeComClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's enterprise client, its token request included, on WECOM_API_BASE_URL
    (wechatpy 1.8.18 fetches tokens from a hard-coded host otherwise)."""

    def __init__(self, api_base_url: str, corp_id: str, secret: str, **kwargs: Any) -> None:
        # The digest tells apart the tokens of two apps of one corp (or of two servers).
        app = hashlib.sha256(f"{api_base_url}\n{secret}".encode()).hexdigest()[:16]
        kwargs.setdefault("session", SharedSessionStorage(f"wecom-token:{app}"))
        super().__init__(corp_id, secret, timeout=CALL_TIMEOUT_SECONDS, **kwargs)
        self.API_BASE_URL = api_base_url

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(  # type: ignore[no-any-return]
            url=f"{self.API_BASE_URL}gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )

    def pages(self, endpoint: str, body: dict[str, Any], field: str) -> Iterator[dict[str, Any]]:
        """Every entry of a paged list endpoint (wechatpy has no methods for these)."""
        cursor = ""
        while True:
            page: dict[str, Any] = self.post(endpoint, data={**body, "cursor": cursor})
            yield from page.get(field, [])
            cursor = page.get("next_cursor", "")
            if not cursor:
                return


@cache
def _client(api_base_url: str, corp_id: str, secret: str) -> WeComClient:
    return WeComClient(api_base_url, corp_id, secret)


def wecom_client() -> WeComClient:
    """One client per process and configuration; its token lives in the shared cache."""
    return _client(settings.WECOM_API_BASE_URL, settings.WECOM_CORP_ID, settings.WECOM_SECRET)


def errcode_of(error: Exception) -> int | None:
    return error.errcode if isinstance(error, WeChatClientException) else None


def wecom_call(
    call: Callable[..., _T],
    *args: Any,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> _T:
    """`call(*args, **kwargs)`, waited on and repeated while WeCom answers busy or over its
    rate limit (BACKOFF_SECONDS); any other refusal, or the last one, is raised."""
    for wait in (*BACKOFF_SECONDS, None):
        try:
            return call(*args, **kwargs)
        except WeChatClientException as error:
            if error.errcode not in RETRYABLE_ERRCODES or wait is None:
                raise
            logger.warning(
                "wecom.call_backoff", extra={"errcode": error.errcode, "wait_seconds": wait}
            )
            sleep(wait)
    raise AssertionError("unreachable")
