"""Channel QR code (渠道活码) services: create, change and stop WeCom contact ways (联系我)
through wechatpy, keeping here what WeCom answered (its config id, the code's address and,
fetched once, its image).

Validate, then act: the input is checked here first; WeCom is called next, outside any
transaction; only what WeCom accepted is stored. A refusal from WeCom is a domain error
(`wecom_refused`, with WeCom's errcode) and nothing is stored. A code created in WeCom that
cannot be stored (a race on its state) is deleted in WeCom again.

The image is fetched from the address WeCom gives, under the outbound policy (core.outbound):
http(s) only, no credentials, no internal host name, every address the host resolves to public,
the request sent to an address checked, no redirects, at most QR_CODE_MAX_BYTES of an image/*
answer. The configured WeCom API host (WECOM_API_BASE_URL, the local fake in development and
tests) is the one address inside the network allowed. A code whose image could not be fetched
is kept (it exists in WeCom); the image is fetched again when it is first asked for."""

import ipaddress
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wechatpy.exceptions import WeChatClientException

from core.errors import Conflict, NotFound, ValidationFailed
from core.models import AuditAction
from core.outbound import SCHEMES, address_is_public, host_is_internal_name, resolve_host
from core.services.audit import audit_change, audit_values
from crm.models import ContactWay, ContactWayKind, SourceChannel, StaffMember, Tag
from crm.wecom.client import CALL_TIMEOUT_SECONDS, errcode_of, wecom_call, wecom_client

logger = logging.getLogger(__name__)

ERROR_CONTACT_WAY_NOT_FOUND = "contact_way_not_found"
ERROR_INVALID_STATE = "contact_way_invalid_state"
ERROR_STATE_TAKEN = "contact_way_state_taken"
ERROR_INVALID_NAME = "contact_way_invalid_name"
ERROR_INVALID_KIND = "contact_way_invalid_kind"
ERROR_INVALID_SOURCE_CHANNEL = "contact_way_invalid_source_channel"
ERROR_STAFF_MEMBERS = "contact_way_staff_members"
ERROR_UNKNOWN_TAGS = "contact_way_unknown_tags"
ERROR_INACTIVE = "contact_way_inactive"
ERROR_WECOM_REFUSED = "wecom_refused"
ERROR_QR_CODE_UNAVAILABLE = "contact_way_qr_code_unavailable"

# The fields of a code its audit events compare (staff members and tags are set apart).
AUDITED_FIELDS: tuple[str, ...] = ("name", "state", "config_id", "kind", "source_channel")
AUDITED_FIELDS += ("skip_verify", "is_active")

# WeCom's scene 2: the contact way is a QR code (1 would be a mini-program button).
SCENE_QR_CODE = 2
# WeCom takes at most 30 characters of state and of remark.
STATE_MAX_CHARS = 30
REMARK_MAX_CHARS = 30
# Letters, digits, "_" and "-": safe in a URL, a log line and a spreadsheet cell.
STATE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,30}$")
# WeCom's limit on the staff members of one contact way.
STAFF_MEMBERS_MAX = 100
AUTO_TAGS_MAX = 20
# A QR code PNG from WeCom is some tens of kilobytes; anything much larger is not one.
QR_CODE_MAX_BYTES = 1024 * 1024

# What an operator reads for WeCom's errcodes on these calls (others: the errcode alone).
_WECOM_MESSAGES = {
    40003: gettext_lazy("A staff member's WeCom account is not valid."),
    40035: gettext_lazy("WeCom refused a value of the channel QR code."),
    41044: gettext_lazy("WeCom does not know this channel QR code."),
    60011: gettext_lazy("The app may not see this staff member in WeCom (visible range)."),
    84074: gettext_lazy(
        "The app may not manage channel QR codes in WeCom (customer contact permission)."
    ),
}


class QrCodeRefused(ValueError):
    """The image address breaks the outbound policy, or its answer is not a small image."""


@dataclass(frozen=True)
class _Checked:
    staff: list[StaffMember]
    tags: list[Tag]


def _wecom_refused(error: Exception) -> Conflict:
    """WeCom's refusal, or WeCom out of reach (no errcode: a network error, an HTTP error, or
    no answer), as the conflict the API answers 409 and the admin shows on the form."""
    errcode = errcode_of(error)
    if errcode is None:
        message = _("WeCom could not be reached; nothing was changed. Try again later.")
    else:
        reason = _WECOM_MESSAGES.get(errcode)
        message = _("WeCom refused (error %(errcode)s): %(reason)s Nothing was changed.") % {
            "errcode": errcode,
            "reason": str(reason) if reason else _("see WeCom's error codes."),
        }
    logger.warning("wecom.contact_way_refused", extra={"errcode": errcode})
    return Conflict(ERROR_WECOM_REFUSED, message, detail={"wecom": [message]})


def _invalid(code: str, field: str, message: str) -> ValidationFailed:
    return ValidationFailed(code, message, detail={field: [message]})


def state_generate() -> str:
    """A new channel parameter: `cw` and 16 random letters and digits (unguessable, short)."""
    return "cw" + secrets.token_hex(8)


def _check(
    *, kind: int, staff_member_ids: Sequence[int], auto_tag_ids: Sequence[int], source_channel: str
) -> _Checked:
    if kind not in ContactWayKind.values:
        raise _invalid(ERROR_INVALID_KIND, "kind", _("Choose one or several staff members."))
    ids = list(dict.fromkeys(staff_member_ids))
    if not ids or len(ids) > STAFF_MEMBERS_MAX:
        raise _invalid(
            ERROR_STAFF_MEMBERS,
            "staff_member_ids",
            _("Choose between 1 and %(max)d staff members.") % {"max": STAFF_MEMBERS_MAX},
        )
    if kind == ContactWayKind.SINGLE and len(ids) != 1:
        raise _invalid(
            ERROR_STAFF_MEMBERS,
            "staff_member_ids",
            _("A code for one staff member takes exactly one staff member."),
        )
    staff = list(StaffMember.objects.filter(pk__in=ids, is_active=True))
    if len(staff) != len(ids):
        raise _invalid(
            ERROR_STAFF_MEMBERS,
            "staff_member_ids",
            _("Some staff members do not exist or are no longer active."),
        )
    staff.sort(key=lambda member: ids.index(member.pk))
    tag_ids = list(dict.fromkeys(auto_tag_ids))
    if len(tag_ids) > AUTO_TAGS_MAX:
        raise _invalid(
            ERROR_UNKNOWN_TAGS,
            "auto_tag_ids",
            _("At most %(max)d tags on add.") % {"max": AUTO_TAGS_MAX},
        )
    tags = list(Tag.objects.filter(pk__in=tag_ids))
    if len(tags) != len(tag_ids):
        raise _invalid(ERROR_UNKNOWN_TAGS, "auto_tag_ids", _("Some tags do not exist."))
    if source_channel and source_channel not in SourceChannel.values:
        raise _invalid(ERROR_INVALID_SOURCE_CHANNEL, "source_channel", _("Unknown source channel."))
    return _Checked(staff=staff, tags=tags)


def _check_state(state: str) -> str:
    state = state.strip() or state_generate()
    if not STATE_PATTERN.match(state):
        raise _invalid(
            ERROR_INVALID_STATE,
            "state",
            _("The channel parameter takes 1 to 30 letters, digits, underscores or hyphens."),
        )
    if ContactWay.objects.filter(state=state).exists():
        raise Conflict(
            ERROR_STATE_TAKEN,
            _("Another channel QR code has this channel parameter."),
            detail={"state": [_("Another channel QR code has this channel parameter.")]},
        )
    return state


def contact_way_create(
    *,
    name: str,
    state: str = "",
    kind: int = ContactWayKind.SINGLE,
    staff_member_ids: Sequence[int],
    auto_tag_ids: Sequence[int] = (),
    source_channel: str = "",
    skip_verify: bool = True,
    actor: str,
) -> ContactWay:
    """Create the code in WeCom (add_contact_way, scene 2: a QR code), then store it with its
    config id, address and image. `state` empty: one is generated."""
    name = name.strip()
    if not name or len(name) > 64:
        raise _invalid(ERROR_INVALID_NAME, "name", _("Give the code a name of 1 to 64 characters."))
    checked = _check(
        kind=kind,
        staff_member_ids=staff_member_ids,
        auto_tag_ids=auto_tag_ids,
        source_channel=source_channel,
    )
    state = _check_state(state)
    client = wecom_client()
    try:
        answer: dict[str, Any] = wecom_call(
            client.external_contact.add_contact_way,
            type=int(kind),
            scene=SCENE_QR_CODE,
            state=state,
            user=[member.wecom_userid for member in checked.staff],
            skip_verify=skip_verify,
            remark=name[:REMARK_MAX_CHARS],
        )
    except (WeChatClientException, requests.RequestException) as error:
        raise _wecom_refused(error) from None
    config_id = str(answer.get("config_id") or "")
    qr_code_url = str(answer.get("qr_code") or "")
    image = _qr_code_image_or_none(qr_code_url, config_id=config_id)
    try:
        with transaction.atomic():
            contact_way = ContactWay.objects.create(
                name=name,
                state=state,
                config_id=config_id or None,
                kind=kind,
                source_channel=source_channel,
                skip_verify=skip_verify,
                qr_code_url=qr_code_url[:512],
                qr_code_image=image,
            )
            contact_way.staff_members.set(checked.staff)
            contact_way.auto_tags.set(checked.tags)
            audit_change(
                actor=actor,
                action=AuditAction.CREATE,
                object_type="contact_way",
                object_id=contact_way.pk,
                after=audit_values(contact_way, AUDITED_FIELDS),
            )
    except IntegrityError:
        # Another code took the state (or WeCom repeated a config id) in the meantime: the
        # code just made in WeCom would otherwise be left behind there.
        _wecom_delete_quietly(config_id)
        raise Conflict(
            ERROR_STATE_TAKEN,
            _("Another channel QR code has this channel parameter."),
            detail={"state": [_("Another channel QR code has this channel parameter.")]},
        ) from None
    logger.info(
        "wecom.contact_way_created",
        extra={"contact_way_id": contact_way.pk, "has_image": image is not None},
    )
    return contact_way


def _wecom_delete_quietly(config_id: str) -> None:
    if not config_id:
        return
    try:
        wecom_call(wecom_client().external_contact.del_contact_way, config_id)
    except (WeChatClientException, requests.RequestException) as error:
        logger.warning("wecom.contact_way_orphaned", extra={"errcode": errcode_of(error)})


def contact_way_get_or_404(*, contact_way_id: int) -> ContactWay:
    """The code, or NotFound (`contact_way_not_found`)."""
    contact_way = ContactWay.objects.filter(pk=contact_way_id).first()
    if contact_way is None:
        raise NotFound(ERROR_CONTACT_WAY_NOT_FOUND, _("No such channel QR code."))
    return contact_way


def _audited(contact_way: ContactWay) -> dict[str, Any]:
    """The code's audited values, its staff members and tags on add by id included."""
    return {
        **audit_values(contact_way, AUDITED_FIELDS),
        "staff_member_ids": sorted(m.pk for m in contact_way.staff_members.all()),
        "auto_tag_ids": sorted(t.pk for t in contact_way.auto_tags.all()),
    }


def contact_way_update(
    *,
    contact_way_id: int,
    name: str | None = None,
    staff_member_ids: Sequence[int] | None = None,
    auto_tag_ids: Sequence[int] | None = None,
    source_channel: str | None = None,
    skip_verify: bool | None = None,
    actor: str,
) -> ContactWay:
    """Change the code's name, staff members, tags on add, source channel or confirmation, in
    WeCom first (update_contact_way) where WeCom holds it. The state never changes: reports
    and customers' first touch are keyed by it."""
    contact_way = contact_way_get_or_404(contact_way_id=contact_way_id)
    if not contact_way.is_active:
        raise Conflict(ERROR_INACTIVE, _("This channel QR code is stopped and cannot change."))
    if name is not None:
        name = name.strip()
        if not name or len(name) > 64:
            raise _invalid(
                ERROR_INVALID_NAME, "name", _("Give the code a name of 1 to 64 characters.")
            )
    current_staff = list(contact_way.staff_members.values_list("pk", flat=True))
    current_tags = list(contact_way.auto_tags.values_list("pk", flat=True))
    checked = _check(
        kind=contact_way.kind,
        staff_member_ids=current_staff if staff_member_ids is None else staff_member_ids,
        auto_tag_ids=current_tags if auto_tag_ids is None else auto_tag_ids,
        source_channel=contact_way.source_channel if source_channel is None else source_channel,
    )
    new_name = contact_way.name if name is None else name
    new_skip_verify = contact_way.skip_verify if skip_verify is None else skip_verify
    if contact_way.config_id:
        try:
            wecom_call(
                wecom_client().external_contact.update_contact_way,
                contact_way.config_id,
                new_name[:REMARK_MAX_CHARS],
                skip_verify=new_skip_verify,
                user=[member.wecom_userid for member in checked.staff],
            )
        except (WeChatClientException, requests.RequestException) as error:
            raise _wecom_refused(error) from None
    before = _audited(contact_way)
    with transaction.atomic():
        contact_way.name = new_name
        contact_way.skip_verify = new_skip_verify
        if source_channel is not None:
            contact_way.source_channel = source_channel
        contact_way.save(update_fields=["name", "skip_verify", "source_channel"])
        contact_way.staff_members.set(checked.staff)
        contact_way.auto_tags.set(checked.tags)
        audit_change(
            actor=actor,
            action=AuditAction.CHANGE,
            object_type="contact_way",
            object_id=contact_way.pk,
            before=before,
            after=_audited(contact_way),
        )
    logger.info("wecom.contact_way_updated", extra={"contact_way_id": contact_way.pk})
    return contact_way


def contact_way_deactivate(*, contact_way_id: int, actor: str) -> ContactWay:
    """Stop the code: deleted in WeCom (del_contact_way; scanning it adds nobody any more),
    kept here inactive so that its customers and reports stay. Stopping a stopped code
    changes nothing."""
    contact_way = contact_way_get_or_404(contact_way_id=contact_way_id)
    if not contact_way.is_active:
        return contact_way
    if contact_way.config_id:
        try:
            wecom_call(wecom_client().external_contact.del_contact_way, contact_way.config_id)
        except (WeChatClientException, requests.RequestException) as error:
            raise _wecom_refused(error) from None
    before = audit_values(contact_way, AUDITED_FIELDS)
    with transaction.atomic():
        ContactWay.objects.filter(pk=contact_way.pk).update(is_active=False)
        contact_way.is_active = False
        audit_change(
            actor=actor,
            action=AuditAction.CHANGE,
            object_type="contact_way",
            object_id=contact_way.pk,
            before=before,
            after=audit_values(contact_way, AUDITED_FIELDS),
        )
    logger.info("wecom.contact_way_deactivated", extra={"contact_way_id": contact_way.pk})
    return contact_way


def contact_way_qr_code_image(*, contact_way_id: int) -> bytes:
    """The code's PNG as stored; fetched again (and stored) if the first fetch failed."""
    contact_way = contact_way_get_or_404(contact_way_id=contact_way_id)
    image = contact_way.qr_code_image
    if image:
        return bytes(image)
    image = _qr_code_image_or_none(contact_way.qr_code_url, config_id=contact_way.config_id or "")
    if image is None:
        raise NotFound(ERROR_QR_CODE_UNAVAILABLE, _("The QR code image is not available."))
    ContactWay.objects.filter(pk=contact_way.pk).update(qr_code_image=image)
    return image


def _qr_code_image_or_none(url: str, *, config_id: str) -> bytes | None:
    if not url:
        return None
    try:
        return qr_code_download(url)
    except QrCodeRefused as error:
        logger.warning(
            "wecom.contact_way_qr_code_refused",
            extra={"has_config_id": bool(config_id), "reason": str(error)},
        )
        return None


def _is_wecom_api_origin(scheme: str, host: str, port: int) -> bool:
    api = urlsplit(settings.WECOM_API_BASE_URL)
    api_scheme = api.scheme.lower()
    api_port = api.port or (443 if api_scheme == "https" else 80)
    return (scheme, host, port) == (api_scheme, (api.hostname or "").lower(), api_port)


def qr_code_download(url: str) -> bytes:
    """The image at `url` under the outbound policy (see the module), or QrCodeRefused."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise QrCodeRefused("invalid_url") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise QrCodeRefused("scheme")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise QrCodeRefused("credentials")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise QrCodeRefused("no_host")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise QrCodeRefused("invalid_host") from None
    port = port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if _is_wecom_api_origin(scheme, host, port):
        address = host  # the configured WeCom API host: trusted as configured
    else:
        try:
            literal: Any = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is None and host_is_internal_name(host):
            raise QrCodeRefused("internal_name")
        try:
            addresses = [str(literal)] if literal is not None else resolve_host(host, port)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise QrCodeRefused("unresolved")
        if not all(address_is_public(ipaddress.ip_address(a)) for a in addresses):
            raise QrCodeRefused("internal_address")
        address = addresses[0]
    pinned = f"[{address}]" if ":" in address else address
    default_port = 443 if scheme == "https" else 80
    host_header = host if port == default_port else f"{host}:{port}"
    try:
        with (
            httpx.Client(
                timeout=CALL_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "GET",
                f"{scheme}://{pinned}:{port}{target}",
                headers={"Host": host_header},
                extensions={"sni_hostname": host} if scheme == "https" else None,
            ) as response,
        ):
            if response.status_code != 200:
                raise QrCodeRefused(f"http_{response.status_code}")
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if not content_type.lower().startswith("image/"):
                raise QrCodeRefused("not_an_image")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > QR_CODE_MAX_BYTES:
                raise QrCodeRefused("too_large")
            data = bytearray()
            for chunk in response.iter_bytes():
                data.extend(chunk)
                if len(data) > QR_CODE_MAX_BYTES:
                    raise QrCodeRefused("too_large")
    except httpx.HTTPError as error:
        raise QrCodeRefused(type(error).__name__) from None
    if not data:
        raise QrCodeRefused("empty")
    return bytes(data)
