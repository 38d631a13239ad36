"""Rate limits per API key: DRF throttles counted in the cache every process shares (Redis or a
PostgreSQL table, settings.CACHES "default"), so that a key's requests count the same on any
web process. Limits are per key, not per address: one key's excess never slows another.

Each scope has one or more windows (settings.API_RATE_LIMITS: `30/min,1000/day`), all enforced
over one history of request times per (scope, key), newest first. A request is counted once in
its general scope (`api`, or `bulk` for the bulk ingestion endpoints, which declare
`rate_limit_scope = "bulk"`) and, when it could tell whether a guessed personal value exists,
once more in the strict scope its view names through `probe_rate_limit_scope(request)`. A
refused request is not counted, and is answered 429 with `Retry-After` (crm.api.errors).

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

from crm.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.views import APIView

SCOPE_GENERAL = "api"
SCOPE_BULK = "bulk"
SCOPE_IDENTITY_LOOKUP = "identity_lookup"
SCOPE_SEARCH = "search"


class _WindowedThrottle(BaseThrottle):
    """Allows a request when every window of its scope has room; `wait` is how long until the
    fullest window has room again."""

    timer = staticmethod(time.time)

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
        rates: list[tuple[int, int]] = settings.API_RATE_LIMITS.get(scope, []) if scope else []
        if not rates:
            return True
        key = f"throttle:{scope}:{self.caller_ident(request)}"
        now = self.timer()
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
            self._wait = max(waits)
            return False
        history.insert(0, now)
        cache.set(key, history[:kept], longest)
        return True

    def wait(self) -> float | None:
        return self._wait


class GeneralRateThrottle(_WindowedThrottle):
    """Every request: scope `api`, or the view's own `rate_limit_scope` (`bulk`)."""

    def scope_for(self, request: Request, view: "APIView") -> str | None:
        return getattr(view, "rate_limit_scope", SCOPE_GENERAL)


class PersonalDataProbeThrottle(_WindowedThrottle):
    """Requests that could confirm a guessed personal value (a phone number looked up, a search
    term), in the strict scope the view names for the request; others pass."""

    def scope_for(self, request: Request, view: "APIView") -> str | None:
        probe_scope: Any = getattr(view, "probe_rate_limit_scope", None)
        return probe_scope(request) if probe_scope is not None else None
