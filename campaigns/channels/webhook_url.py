"""Where a webhook may post: the one policy behind both the campaign's validation and every
send. A webhook URL is http or https, carries no user name or password, names no host that is
internal by name (localhost, *.internal, *.local, single labels), and its host resolves only
to public addresses: every address getaddrinfo answers is checked, and the post then connects
to an address that was checked (`WebhookTarget.address`), so that a second DNS answer (DNS
rebinding) cannot send it elsewhere. WEBHOOK_ALLOW_PRIVATE_NETWORKS lifts the network checks
(names and addresses), for tests and local development only; schemes and credentials are
refused whatever it says."""

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

# The names and addresses policy is core's (crm fetches from outside too); the tests replace
# resolve_host here, where webhook_url_check looks it up.
from core.outbound import (  # noqa: F401
    BLOCKED_NAMES,
    BLOCKED_SUFFIXES,
    SCHEMES,
    IPAddress,
    address_is_public,
    host_is_internal_name,
    resolve_host,
)

ERROR_WEBHOOK_URL_NOT_ALLOWED = "webhook_url_not_allowed"


class WebhookUrlRefused(ValueError):
    """The URL breaks the policy; `str(error)` says why, for the operator."""


class WebhookHostUnresolved(WebhookUrlRefused):
    """The host name did not resolve: refused when a campaign is saved, a failed attempt
    (retried) at send time, where DNS may only be down for a while."""


@dataclass(frozen=True)
class WebhookTarget:
    """A URL that passed the policy, with the address checked to connect to."""

    scheme: str
    host: str  # ASCII (IDNA), lower case, no trailing dot: the Host header and the TLS name
    port: int
    target: str  # path and query
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{address}:{self.port}{self.target}"


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def webhook_url_check(url: str) -> WebhookTarget:
    """The target of `url`, or WebhookUrlRefused saying why it may not be posted to. Resolves
    the host (a network call): run it outside transactions that hold locks others wait on."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise WebhookUrlRefused(_("Not a valid URL.")) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise WebhookUrlRefused(_("Only http and https URLs are allowed."))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookUrlRefused(_("The URL may not carry a user name or password."))
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise WebhookUrlRefused(_("The URL names no host."))
    try:
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise WebhookUrlRefused(_("Not a valid host name.")) from None
    port = port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS
    literal = _literal_address(host)
    is_internal_name = host_is_internal_name(host)
    if literal is None and is_internal_name and not allow_private:
        raise WebhookUrlRefused(_("The host name belongs to an internal network."))
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve_host(host, port)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise WebhookHostUnresolved(_("The host name does not resolve."))
    if not allow_private:
        for address in addresses:
            if not address_is_public(ipaddress.ip_address(address)):
                raise WebhookUrlRefused(
                    _("The host is inside a private or reserved network (%(address)s).")
                    % {"address": address}
                )
    return WebhookTarget(scheme=scheme, host=host, port=port, target=target, address=addresses[0])
