"""Public endpoints of the CRM: /wecom/callback, the URL a corp registers in WeCom's admin
console for 客户联系 events (README, "Receiving WeCom callbacks"). No login and no API key:
each request proves itself by WeCom's signature. WeCom waits 5 s for an answer and retries
otherwise, so a POST only verifies, stores and queues (crm.services.wecom_events); the event
is applied by a task after commit.

Answers: GET, the decrypted echostr (plain text); POST, 200 "success" (also for an event
stored before: WeCom's retry); a refusal, its status and code as plain text, logged with the
code only. Nothing is written for a refusal."""

import logging

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from crm.services.wecom_events import wecom_event_store
from crm.wecom.callbacks import (
    MAX_BODY_BYTES,
    REFUSED_TOO_LARGE,
    CallbackRefused,
    callback_crypto,
    callback_decrypt,
    callback_url_verify,
)

logger = logging.getLogger(__name__)

SUCCESS = "success"


def _text(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def _refused(request: HttpRequest, refusal: CallbackRefused) -> HttpResponse:
    logger.warning(
        "wecom.callback_refused",
        extra={"code": refusal.code, "method": request.method, "status": refusal.status},
    )
    return _text(refusal.code, refusal.status)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wecom_callback(request: HttpRequest) -> HttpResponse:
    crypto = callback_crypto()
    if crypto is None:
        return _text("not_found", 404)
    params = request.GET
    now = timezone.now()
    try:
        if request.method == "GET":
            echo = callback_url_verify(
                crypto,
                msg_signature=params.get("msg_signature", ""),
                timestamp=params.get("timestamp", ""),
                nonce=params.get("nonce", ""),
                echostr=params.get("echostr", ""),
                now=now,
            )
            logger.info("wecom.callback_url_verified")
            return _text(echo)
        # A body announced too large is refused before it is read.
        if _declared_length(request) > MAX_BODY_BYTES:
            raise CallbackRefused(REFUSED_TOO_LARGE)
        parsed = callback_decrypt(
            crypto,
            body=request.body,
            msg_signature=params.get("msg_signature", ""),
            timestamp=params.get("timestamp", ""),
            nonce=params.get("nonce", ""),
            now=now,
        )
    except CallbackRefused as refusal:
        return _refused(request, refusal)
    if not parsed.event:
        # A message that is no event (the URL also set as an app's message URL): taken, not
        # kept, so that WeCom does not send it again.
        logger.info("wecom.callback_not_an_event")
        return _text(SUCCESS)
    wecom_event_store(parsed=parsed, received_at=now)
    return _text(SUCCESS)
