"""The address a request came from, as far as this server can trust it: REMOTE_ADDR, or, behind
TRUSTED_PROXY_COUNT proxies that each append the address they received the request from to
X-Forwarded-For, the entry that many hops from the right of that header (what the outermost
trusted proxy saw). Entries further left are whatever the client wrote and are never read.

API keys' allowed addresses and the admin login's lockout (django-axes) both ask here, so that
the two never disagree about who is calling."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest

FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"


def _normalised(value: str) -> str | None:
    """`value` as a canonical IP address, or None when it is none (a name, garbage, empty)."""
    text = value.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443", as some proxies write it
        text = text[1 : text.index("]")]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, or None when it cannot be told (then nothing limited to
    addresses lets it in). With TRUSTED_PROXY_COUNT = N > 0, the N-th X-Forwarded-For entry
    from the right; a header with fewer entries than N did not pass through every trusted proxy
    (a misconfiguration, or a request that bypassed them), so REMOTE_ADDR answers."""
    trusted: int = settings.TRUSTED_PROXY_COUNT
    if trusted > 0:
        hops = [hop for hop in request.META.get(FORWARDED_FOR, "").split(",") if hop.strip()]
        if len(hops) >= trusted:
            return _normalised(hops[-trusted])
    return _normalised(request.META.get("REMOTE_ADDR", ""))
