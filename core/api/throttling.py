"""Rate limits per API key: DRF throttles counted in the cache every process shares (Redis or a
PostgreSQL table, settings.CACHES "default"), so that a key's requests count the same on any
web process. Limits are per key, not per address: one key's excess never slows another.

Each scope has one or more windows (settings.API_RATE_LIMITS: `30/min,1000/day`), all enforced
over one history of request times per (scope, key), newest first. A request is counted once in
its general scope (`api`, or `bulk` for the bulk ingestion endpoints, which declare
`rate_limit_scope = "bulk"`) and, when it could tell whether a guessed personal value exists,
once more in the strict scope its view names through `probe_rate_limit_scope(request)`
(unless the caller may see personal data unmasked). A request refused by any scope is counted
in none, and is answered 429 with `Retry-After` (core.api.errors). The admin's customer search
counts in the `search` scope of its user (crm.admin), as the API does for a logged-in user.

Counts are not exact under concurrency (two processes may read the same history and both
write it back): this is a limit on guessing, not a cap. Caps on sends are enforced in
PostgreSQL, never here.
"""

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.api.auth import may_see_personal_data
from core.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.views import APIView

SCOPE_GENERAL = "api"
SCOPE_BULK = "bulk"
SCOPE_IDENTITY_LOOKUP = "identity_lookup"
SCOPE_SEARCH = "search"


def rate_limit_consume(*, scopes: Sequence[str], ident: str) -> float | None:
    """Count one request of `ident` (a key, a user) in each of `scopes` when every window of
    them has room, and answer None; otherwise count nothing anywhere and answer the seconds
    until every window has room again. One read of the histories, one write per scope."""
    limited = [(scope, rates) for scope in scopes if (rates := settings.API_RATE_LIMITS.get(scope))]
    if not limited:
        return None
    now = time.time()
    keys = {scope: f"throttle:{scope}:{ident}" for scope, _ in limited}
    stored = cache.get_many(list(keys.values()))
    waits: list[float] = []
    updates: list[tuple[str, list[float], int]] = []
    for scope, rates in limited:
        longest = max(seconds for _, seconds in rates)
        kept = max(count for count, _ in rates)
        history = [t for t in stored.get(keys[scope], []) if t > now - longest][:kept]
        for count, seconds in rates:
            in_window = [t for t in history if t > now - seconds]
            if len(in_window) >= count:
                # The window has room again when its count-th newest request leaves it.
                waits.append(in_window[count - 1] + seconds - now)
        updates.append((keys[scope], [now, *history][:kept], longest))
    if waits:
        return max(waits)
    for key, history, timeout in updates:
        cache.set(key, history, timeout)
    return None


class ApiKeyRateThrottle(BaseThrottle):
    """The general scope of every request (`api`, or the view's `rate_limit_scope`), and the
    strict scope the view names for a request that could confirm a guessed personal value,
    unless the caller may see personal data unmasked anyway (`personal_data:read`)."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def scopes_for(self, request: Request, view: "APIView") -> list[str]:
        scopes = [getattr(view, "rate_limit_scope", SCOPE_GENERAL)]
        probe_scope: Any = getattr(view, "probe_rate_limit_scope", None)
        if probe_scope is not None and not may_see_personal_data(request):
            strict = probe_scope(request)
            if strict is not None:
                scopes.append(strict)
        return scopes

    def caller_ident(self, request: Request) -> str:
        """The key's public prefix (random, so never shared with another key, even one made
        after a database reset), else the staff user, else the address."""
        if isinstance(request.auth, ApiKey):
            return f"key:{request.auth.prefix}"
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return f"user:{user.pk}"
        return f"address:{self.get_ident(request)}"

    def allow_request(self, request: Request, view: "APIView") -> bool:
        self._wait = rate_limit_consume(
            scopes=self.scopes_for(request, view), ident=self.caller_ident(request)
        )
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait
