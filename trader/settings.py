"""Settings, all from the environment (see .env.example for every variable).

SQLite and DEBUG by default so that `make run` works on a fresh machine; production sets
DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DEBUG = env_bool("DEBUG", True)
TESTING = env_bool("TESTING", False)
# Paper outside market hours trades in a simulated session this many times faster (0: prices
# stay flat after hours). Tests pin their clocks and turn it on where they test it.
os.environ.setdefault("PAPER_AFTER_HOURS_SPEED", "0" if TESTING else "60")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "csp",
    "django_celery_beat",
    "trader",
    "brokers",
    "execution",
    "marketplace",
    "trader.api",
    "trader.signals",
    "trader.alerts",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "trader.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "trader.staff_auth.StaffSecondFactorMiddleware",
]

ROOT_URLCONF = "trader.urls"
WSGI_APPLICATION = "trader.wsgi.application"

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
                "trader.context_processors.market_clock",
                "trader.context_processors.calendar_banner",
                "brokers.context_processors.login_banner",
                "execution.context_processors.kill_switch",
            ],
            # Indian number and money filters in every template (pages, admin, emails).
            "builtins": ["trader.templatetags.india"],
        },
    },
]

# SQLite by default; DATABASE_URL (postgres://…) switches to PostgreSQL through psycopg 3.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run` puts web, worker threads and beat on one SQLite file: WAL lets readers run
    # beside the writer, IMMEDIATE takes the write lock at BEGIN (no upgrade deadlocks), and
    # the timeout makes a writer wait for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int("SQLITE_TIMEOUT", 30),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "trader.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-in"
# Stored in UTC, shown and computed in market time.
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Redis, cache, Celery -------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("CACHE_URL", REDIS_URL),
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "trader"),
    }
}
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True

# --- Accounts (allauth) ---------------------------------------------------------------------
SITE_NAME = os.environ.get("SITE_NAME", "Trader")
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "trader:dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "
# Throttling of repeated failed logins: allauth counts failures per IP and per account.
ACCOUNT_RATE_LIMITS = {
    "login_failed": os.environ.get("LOGIN_FAILED_RATE", "10/m/ip,5/5m/key"),
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = SITE_NAME

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "noreply@localhost")

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    # A token (Authorization: Bearer trk_…) for programs; the session for the browser.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "trader.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "trader.api.authentication.HasScope",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["trader.api.authentication.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies only: a form or multipart body is a 415, never read as an empty object.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# Requests per API token (per user for a browser session), counted in Redis.
API_THROTTLE_RATE = os.environ.get("API_THROTTLE_RATE", "120/min")

# --- Signal webhooks and alerts -------------------------------------------------------------
# A signal is taken within this many seconds of its timestamp (either side), at most this many
# a minute per strategy (Redis), with a body of at most this many bytes.
SIGNAL_MAX_AGE_SECONDS = env_int("SIGNAL_MAX_AGE_SECONDS", 60)
SIGNAL_RATE_PER_MINUTE = env_int("SIGNAL_RATE_PER_MINUTE", 30)
SIGNAL_MAX_BODY_BYTES = env_int("SIGNAL_MAX_BODY_BYTES", 16384)
# Telegram's Bot API (tests point it at a local emulator).
TELEGRAM_API_URL = os.environ.get("TELEGRAM_API_URL", "https://api.telegram.org")
# Web push (VAPID): generate a pair with `python manage.py vapid_keys`; empty = no web push.
WEBPUSH_VAPID_PRIVATE_KEY = os.environ.get("WEBPUSH_VAPID_PRIVATE_KEY", "")
WEBPUSH_VAPID_PUBLIC_KEY = os.environ.get("WEBPUSH_VAPID_PUBLIC_KEY", "")
WEBPUSH_SUBJECT = os.environ.get("WEBPUSH_SUBJECT", "mailto:admin@localhost")
# A delivery is tried this many times in all, waiting ALERT_RETRY_BASE_SECONDS x 4^n between.
ALERT_MAX_ATTEMPTS = env_int("ALERT_MAX_ATTEMPTS", 5)
ALERT_RETRY_BASE_SECONDS = env_int("ALERT_RETRY_BASE_SECONDS", 15)
ALERT_HTTP_TIMEOUT_SECONDS = env_int("ALERT_HTTP_TIMEOUT_SECONDS", 10)
# Outgoing alert URLs (webhooks, push endpoints) may point at private or loopback addresses:
# only for development and tests (a user's URL must not reach the platform's own network).
ALERT_ALLOW_PRIVATE_URLS = env_bool("ALERT_ALLOW_PRIVATE_URLS", DEBUG)
SPECTACULAR_SETTINGS = {
    "TITLE": "Trader API",
    "DESCRIPTION": (
        "What a trader does on the pages, for their programs. Authenticate with an API token "
        "(Profile → API tokens) as `Authorization: Bearer trk_…`; each token holds scopes: "
        "read, trade, marketplace. Another user's object answers 404."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # A leg's stop-loss and target take the same units: one enum in the schema.
    "ENUM_NAME_OVERRIDES": {"ExitUnitEnum": "trader.models.ExitUnit"},
}

# --- Security (on by default when DEBUG is off, each overridable) ---------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Content-Security-Policy, in every mode: scripts and styles only from our own static files, so
# markup injected into a page cannot run script (no inline script, event handler or eval; htmx
# runs with allowEval off, see base.html). Nothing may frame the site, embed plugins or
# change the base URL.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Encryption of broker credentials at rest -----------------------------------------------
# Comma-separated Fernet keys, newest first: MultiFernet encrypts with the first and decrypts
# with any, so a key is rotated by prepending a new one and running `rotate_broker_secrets`.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set when DEBUG is off.")
    # Development only: a fixed, public key; never used with DEBUG off.
    FIELD_ENCRYPTION_KEYS = ["ZGV2LW9ubHkta2V5LW5ldmVyLWluLXByb2R1Y3Rpb24="]

# --- Marketplace ----------------------------------------------------------------------------
# The platform's cut of every fee and profit share, in percent; the creator is paid the rest.
MARKETPLACE_COMMISSION_PERCENT = os.environ.get("MARKETPLACE_COMMISSION_PERCENT", "20")

# --- Broker endpoints -----------------------------------------------------------------------
# The brokers' documented hosts; each is overridable, e.g. BROKER_BASE_URL_KITE or
# BROKER_LOGIN_URL_UPSTOX, to point an adapter at a local emulator (`python -m brokers.emulator`).
_BROKER_BASE_URL_DEFAULTS = {
    "kite": "https://api.kite.trade",
    "upstox": "https://api.upstox.com",
    "upstox_hft": "https://api-hft.upstox.com",  # Upstox takes order writes on this host only
    "angelone": "https://apiconnect.angelone.in",
    "fyers": "https://api-t1.fyers.in",
    "dhan": "https://api.dhan.co",
    "dhan_auth": "https://auth.dhan.co",
}
_BROKER_LOGIN_URL_DEFAULTS = {
    "kite": "https://kite.zerodha.com/connect/login",
    "upstox": "https://api.upstox.com/v2/login/authorization/dialog",
    "angelone": "https://smartapi.angelone.in/publisher-login",
    "fyers": "https://api-t1.fyers.in/api/v3/generate-authcode",
    "dhan": "https://auth.dhan.co/login/consentApp-login",
}
BROKER_BASE_URLS = {
    name: os.environ.get(f"BROKER_BASE_URL_{name.upper()}", url).rstrip("/")
    for name, url in _BROKER_BASE_URL_DEFAULTS.items()
}
BROKER_LOGIN_URLS = {
    name: os.environ.get(f"BROKER_LOGIN_URL_{name.upper()}", url)
    for name, url in _BROKER_LOGIN_URL_DEFAULTS.items()
}
# Where each broker's daily instrument master is downloaded from (reference §1.5-§5.5);
# `BROKER_MASTER_URL_<BROKER>` overrides it (comma-separated for several files).
_BROKER_MASTER_URL_DEFAULTS = {
    "kite": "https://api.kite.trade/instruments",
    "upstox": "https://assets.upstox.com/market-quote/instruments/exchange/complete.json.gz",
    "angelone": "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json",
    "fyers": "https://public.fyers.in/sym_details/NSE_FO.csv,https://public.fyers.in/sym_details/BSE_FO.csv",
    "dhan": "https://images.dhan.co/api-data/api-scrip-master.csv",
}
BROKER_MASTER_URLS = {
    name: [u for u in os.environ.get(f"BROKER_MASTER_URL_{name.upper()}", urls).split(",") if u]
    for name, urls in _BROKER_MASTER_URL_DEFAULTS.items()
}
# A master that lacks the next expiry of one of these is refused (yesterday's stays in use).
MASTER_EXPECTED_UNDERLYINGS = [
    s for s in os.environ.get("MASTER_EXPECTED_UNDERLYINGS", "NIFTY,BANKNIFTY").split(",") if s
]
# How long a broker login (OAuth `state`) may take before it must be started again.
BROKER_LOGIN_STATE_MAX_AGE = env_int("BROKER_LOGIN_STATE_MAX_AGE", 600)
# Cash a new paper account starts with, in rupees.
PAPER_STARTING_CASH = os.environ.get("PAPER_STARTING_CASH", "1000000")

# Engine: an entry boundary or entry order later than this many seconds after its T is not
# sent ("missed"); exits and kill-switch flattening are never dropped for lateness.
EXECUTION_ENTRY_LATE_CAP_SECONDS = float(os.environ.get("EXECUTION_ENTRY_LATE_CAP_SECONDS", "5"))
# Engine: how long an order whose outcome is unknown is looked up in the broker's books before
# it needs attention (owner alerted, the strategy's entries halted).
EXECUTION_UNKNOWN_SETTLE_SECONDS = float(os.environ.get("EXECUTION_UNKNOWN_SETTLE_SECONDS", "120"))
# Engine: live orders still open after their send are followed fast (trade and order books
# read every second or so, within the broker's read budget) for this long. Off in tests unless
# a test turns it on: a chain left queued by one test would read the books of a later test's
# account that reuses the id.
EXECUTION_FOLLOW_INTERVAL_SECONDS = float(os.environ.get("EXECUTION_FOLLOW_INTERVAL_SECONDS", "1"))
EXECUTION_FOLLOW_BUDGET_SHARE = float(os.environ.get("EXECUTION_FOLLOW_BUDGET_SHARE", "0.5"))
EXECUTION_FOLLOW_MAX_SECONDS = float(
    os.environ.get("EXECUTION_FOLLOW_MAX_SECONDS", "0" if TESTING else "120")
)
# Engine: accounts' batches of one boundary per task message to the send workers.
EXECUTION_SEND_CHUNK_ACCOUNTS = env_int("EXECUTION_SEND_CHUNK_ACCOUNTS", 25)

# --- Logging: stdout, request ids, secrets redacted ------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "trader.logging.RequestIdFilter"},
        "redact": {"()": "trader.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["request_id", "redact"],
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The dev server's access log: query strings carry OAuth codes and request tokens.
        "django.server": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}
