"""The app configs of the admin login's libraries, named in the operators' words in the admin's
app list: django-axes' records (后台登录) and django-otp's TOTP devices (二次验证). Not in
core/apps.py: Django takes the one AppConfig of an app's apps module as its default, and these
subclasses would make core's own ambiguous."""

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.apps import DefaultConfig as TotpAppConfig


class AdminLoginRecordsConfig(AxesAppConfig):
    default = False
    verbose_name = _("Admin logins")


class TwoStepVerificationConfig(TotpAppConfig):
    default = False
    verbose_name = _("Two-step verification")
