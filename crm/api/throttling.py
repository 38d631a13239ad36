"""Rate limits per API key: DRF throttles counted in the cache every process shares (Redis or a
PostgreSQL table, settings.CACHES "default"), so that a key's requests count the same on any
web process. Limits are per key, not per address: one key's excess never slows another.

Each scope has one or more windows (settings.API_RATE_LIMITS: `30/min,1000/day`), all enforced
over one history of request times per (scope, key), newest first. A request is counted once in
its general scope (`api`, or `bulk` for the bulk ingestion endpoints, which declare
`rate_limit_scope = "bulk"`) and, when it could tell whether a guessed personal value exists,
once more in the strict scope its view names through `probe_rate_limit_scope(request)`
(unless the caller may see personal data unmasked). A refused request is not counted, and is
answered 429 with `Retry-After` (crm.api.errors). The admin's customer search counts in the
`search` scope of its user (crm.admin), as the API does for a logged-in user.

Counts are not exact under concurrency (two processes may read the same history and both
write it back): this is a limit on guessing, not a cap. Caps on sends are enforced in
PostgreSQL, never here.
"""

import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from crm.api.auth import may_see_personal_data
from crm.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.views import APIView

SCOPE_GENERAL = "api"
SCOPE_BULK = "bulk"
SCOPE_IDENTITY_LOOKUP = "identity_lookup"
SCOPE_SEARCH = "search"


def rate_limit_consume(*, scope: str, ident: str, now: float | None = None) -> float | None:
    """Count one request of `ident` (a key, a user) in `scope` when every window of the scope
    has room, and answer None; otherwise count nothing and answer the seconds until the
    fullest window has room again."""
    rates: list[tuple[int, int]] = settings.API_RATE_LIMITS.get(scope, [])
    if not rates:
        return None
    key = f"throttle:{scope}:{ident}"
    now = time.time() if now is None else now
    longest = max(seconds for _, seconds in rates)
    kept = max(count for count, _ in rates)
    history: list[float] = [t for t in cache.get(key, []) if t > now - longest][:kept]
    waits = []
    for count, seconds in rates:
        in_window = [t for t in history if t > now - seconds]
        if len(in_window) >= count:
            # The window has room again when its count-th newest request leaves it.
            waits.append(in_window[count - 1] + seconds - now)
    if waits:
        return max(waits)
    history.insert(0, now)
    cache.set(key, history[:kept], longest)
    return None


class _WindowedThrottle(BaseThrottle):
    """Allows a request when every window of its scope has room; `wait` is how long until the
    fullest window has room again."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def scope_for(self, request: Request, view: "APIView") -> str | None:
        raise NotImplementedError

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
        scope = self.scope_for(request, view)
        if scope is None:
            return True
        self._wait = rate_limit_consume(scope=scope, ident=self.caller_ident(request))
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class GeneralRateThrottle(_WindowedThrottle):
    """Every request: scope `api`, or the view's own `rate_limit_scope` (`bulk`)."""

    def scope_for(self, request: Request, view: "APIView") -> str | None:
        return getattr(view, "rate_limit_scope", SCOPE_GENERAL)


class PersonalDataProbeThrottle(_WindowedThrottle):
    """Requests that could confirm a guessed personal value (a phone number looked up, a search
    term), in the strict scope the view names for the request; others pass, and so do
    callers who may see personal data unmasked anyway (`personal_data:read`)."""

    def scope_for(self, request: Request, view: "APIView") -> str | None:
        probe_scope: Any = getattr(view, "probe_rate_limit_scope", None)
        if probe_scope is None or may_see_personal_data(request):
            return None
        return probe_scope(request)
