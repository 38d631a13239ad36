"""Tracked links: every http(s) link in a message is rewritten to a short redirect on this
server (`/l/<token>`) that records the click and sends the reader on. The token is signed, so
nobody can forge clicks for other messages, and names the campaign, the variant, the link's
position in the variant's text, and the delivery when the text was addressed to one customer
(a WeCom bulk text shared by many carries no delivery, so that it stays one call per sender).
"""

import logging
import re

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import LinkClick, Variant
from core.errors import NotFound

logger = logging.getLogger(__name__)

LINK = re.compile(r"https?://[^\s<>\"'，。！？、）)]+")
_SALT = "campaigns.link"
ERROR_LINK_NOT_FOUND = "link_not_found"


def links_rewrite(text: str, *, campaign_id: int, variant_id: int, delivery_id: int | None) -> str:
    """The text with its n-th link replaced by the redirect for (campaign, variant, n,
    delivery)."""
    counter = iter(range(1_000))

    def redirect(_match: re.Match[str]) -> str:
        token = signing.dumps(
            [campaign_id, variant_id, next(counter), delivery_id or 0], salt=_SALT, compress=True
        )
        return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/l/{token}"

    return LINK.sub(redirect, text)


def has_links(text: str) -> bool:
    return LINK.search(text) is not None


def link_click_record(*, token: str) -> str:
    """Record a click; answer where it leads (the link as the variant's text holds it)."""
    try:
        campaign_id, variant_id, link_no, delivery_id = signing.loads(token, salt=_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise NotFound(ERROR_LINK_NOT_FOUND, _("No such link.")) from None
    variant = Variant.objects.filter(pk=variant_id, campaign_id=campaign_id).first()
    links = LINK.findall(variant.content) if variant else []
    if link_no >= len(links):
        raise NotFound(ERROR_LINK_NOT_FOUND, _("No such link."))
    LinkClick.objects.create(
        campaign_id=campaign_id,
        variant_id=variant_id,
        delivery_id=delivery_id or None,
        link_no=link_no,
        clicked_at=timezone.now(),
    )
    logger.info(
        "link.clicked",
        extra={"campaign_id": campaign_id, "delivery_id": delivery_id or None, "link": link_no},
    )
    return str(links[link_no])
