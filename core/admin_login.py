"""The admin login's guards: a lockout after repeated failures (django-axes) and, when
ADMIN_OTP_REQUIRED is on, a second factor (a TOTP code, django-otp) for brand administrators
(the permission group 品牌管理员) and superusers.

- Lockout: a username is locked from one address (core.client_ip) after AXES_FAILURE_LIMIT
  failed logins (ADMIN_LOGIN_FAILURE_LIMIT), for AXES_COOLOFF_TIME (ADMIN_LOGIN_LOCKOUT_MINUTES).
  Only the admin's login form is guarded: an `authenticate()` without a request (the test
  client's `login()`, a shell) has no address to lock and is let through to the next backend.
  API keys never pass here: they are not passwords.
- Second factor: the login form asks for the code of the user's confirmed TOTP device; the
  admin site (console.sites) lets in a user who needs one only once the session is verified."""

from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.services.roles import BRAND_ADMIN

# The permission group whose members need a second factor (as superusers do).

# Too Many Requests, as django-axes answers a lockout by default.
LOCKOUT_STATUS = 429

ERROR_OTP_NOT_ENROLLED = "otp_not_enrolled"
ERROR_OTP_REQUIRED = "otp_required"
ERROR_OTP_INVALID = "otp_invalid"
ERROR_OTP_THROTTLED = "otp_throttled"


class AdminLoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, first in AUTHENTICATION_BACKENDS; it authenticates no one.
    A call without a request is not a login through the admin's form, so it is not guarded
    (axes would refuse it outright): Django's test client logs in that way."""

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)  # type: ignore[no-any-return]


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the admin's login page saying, in the operator's language, that
    this account is locked from here and for how long (429)."""
    cool_off: timedelta | None = settings.AXES_COOLOFF_TIME
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    context = {
        **admin.site.each_context(request),
        "title": _("Log in"),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "lockout_minutes": minutes,
    }
    return TemplateResponse(
        request, "admin/login_locked_out.html", context, status=LOCKOUT_STATUS
    ).render()


def otp_required_for(user: Any) -> bool:
    """Whether `user` must pass a second factor to use the admin: only with ADMIN_OTP_REQUIRED
    on, for superusers and members of 品牌管理员 (one query, remembered on the user object)."""
    if not settings.ADMIN_OTP_REQUIRED or user is None or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_otp_required", None)
    if cached is None:
        cached = user.groups.filter(name=BRAND_ADMIN).exists()
        user._otp_required = cached
    return bool(cached)


def is_verified(user: Any) -> bool:
    """Whether this session passed the second factor (django-otp's OTPMiddleware sets it)."""
    verified = getattr(user, "is_verified", None)
    return bool(verified is not None and verified())


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's login form: username and password (through the backends, lockout first),
    then, for a user who needs a second factor, the code of their TOTP device."""

    otp_token = forms.CharField(
        label=_("Verification code"),
        required=False,
        max_length=10,
        help_text=_("The 6-digit code of your authenticator app, if your account asks for one."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        ERROR_OTP_NOT_ENROLLED: _(
            "This account needs two-step verification but has no authenticator app yet: ask "
            "an administrator to add one for you."
        ),
        ERROR_OTP_REQUIRED: _("Enter the verification code of your authenticator app."),
        ERROR_OTP_INVALID: _("The verification code is wrong or has expired."),
        ERROR_OTP_THROTTLED: _(
            "Too many wrong verification codes: wait a minute before trying again."
        ),
    }

    def __init__(self, request: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        if not settings.ADMIN_OTP_REQUIRED:
            del self.fields["otp_token"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = self.get_user()
        if user is not None and otp_required_for(user):
            # django-otp keeps this device in the session when the view logs the user in.
            user.otp_device = self._verified_device(user, cleaned.get("otp_token", "").strip())  # type: ignore[attr-defined]
        return cleaned

    def _verified_device(self, user: Any, token: str) -> TOTPDevice:
        """The user's confirmed device that accepts `token` (django_otp then keeps it in the
        session at login, so OTPMiddleware marks the session verified)."""
        devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True))
        if not devices:
            raise self._error(ERROR_OTP_NOT_ENROLLED)
        if not token:
            raise self._error(ERROR_OTP_REQUIRED)
        throttled = False
        for device in devices:
            allowed, _details = device.verify_is_allowed()
            if not allowed:
                throttled = True
            elif device.verify_token(token):  # counts a failure on the device otherwise
                return device
        raise self._error(ERROR_OTP_THROTTLED if throttled else ERROR_OTP_INVALID)

    def _error(self, code: str) -> forms.ValidationError:
        return forms.ValidationError(self.error_messages[code], code=code)
