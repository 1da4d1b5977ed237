"""Facteur's settings.

Every value comes from the environment with a safe default. Production (the
default, ``FACTEUR_DEBUG`` unset) refuses to start without a secret key and a
credentials key; development derives both so that the demo needs nothing.
"""

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from webmail.proxies import FORWARDED_PROTO_KEY, parse_networks
from webmail.storage import uploads_storage

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("FACTEUR_DEBUG")
DATA_DIR = Path(os.environ.get("FACTEUR_DATA_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("FACTEUR_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("FACTEUR_SECRET_KEY must be set when FACTEUR_DEBUG is off.")
    SECRET_KEY = "facteur-development-only-secret-key"  # noqa: S105

# Fernet keys for mail passwords at rest: the first encrypts, all decrypt, so a
# new key can be put in front and old rows re-encrypted with `rotate_credentials`.
CREDENTIALS_KEYS = env_list("FACTEUR_CREDENTIALS_KEYS")
if not CREDENTIALS_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "FACTEUR_CREDENTIALS_KEYS must be set when FACTEUR_DEBUG is off "
            "(generate one with `FACTEUR_DEBUG=1 python manage.py generate_credentials_key`)."
        )
    CREDENTIALS_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]

ALLOWED_HOSTS = env_list("FACTEUR_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("FACTEUR_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",
    "webmail",
    "ops",
]

MIDDLEWARE = [
    "webmail.proxies.TrustedProxyMiddleware",
    # Health, readiness and metrics answer before the host check: probes and
    # scrapers reach the app by an internal name.
    "ops.middleware.OperationsEndpointsMiddleware",
    "ops.middleware.RequestObservationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "webmail.middleware.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webmail.middleware.SecurityHeadersMiddleware",
    "webmail.middleware.UserTimezoneMiddleware",
    "webmail.middleware.PrivateResponsesMiddleware",
]

ROOT_URLCONF = "webmail.urls"
WSGI_APPLICATION = "webmail.wsgi.application"
ASGI_APPLICATION = "webmail.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'facteur.sqlite3'}",
        conn_max_age=env_int("FACTEUR_DB_CONN_MAX_AGE", 60),
        # A kept connection is checked before a request reuses it, so that the
        # requests after a database restart do not each fail on a dead one.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web app and the workers use the database at once: with a write-ahead
    # log, pages are read while a worker writes (a POP3 fetch commits every message).
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = ["accounts.backends.UsernameOrEmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "webmail:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sign-in throttling: this many attempts per person (or unknown name) and ten
# times as many per client address within the window lock further attempts
# until the window has passed; a successful sign-in gives its attempt back.
LOGIN_FAILURE_LIMIT = env_int("FACTEUR_LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_WINDOW = env_int("FACTEUR_LOGIN_FAILURE_WINDOW", 15 * 60)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("FACTEUR_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("FACTEUR_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    # Attachments being written: a folder, or an S3 bucket shared by every node.
    "default": uploads_storage(os.environ, DATA_DIR),
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("FACTEUR_CACHE_URL", "redis://127.0.0.1:6379/1"),
        "KEY_PREFIX": "facteur",
    }
    if os.environ.get("FACTEUR_CACHE_URL")
    else {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "facteur",
        "OPTIONS": {"MAX_ENTRIES": 2000},
    }
}

# Sessions and cookies.
# A session lasts a working day from sign-in (not renewed on each request,
# which would cost a database write per page) or until the browser closes.
SESSION_COOKIE_AGE = env_int("FACTEUR_SESSION_AGE", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_COOKIES = env_bool("FACTEUR_SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
LANGUAGE_COOKIE_SECURE = SECURE_COOKIES
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Browsers that once reached Facteur over HTTPS keep to HTTPS for a year.
SECURE_HSTS_SECONDS = env_int("FACTEUR_HSTS_SECONDS", 31536000 if SECURE_COOKIES else 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The reverse proxies (addresses or CIDRs) whose X-Forwarded-For and
# X-Forwarded-Proto are believed; from anyone else they are ignored (see
# webmail/proxies.py, whose middleware reports the scheme under this key).
TRUSTED_PROXIES = env_list("FACTEUR_TRUSTED_PROXIES")
try:
    parse_networks(TRUSTED_PROXIES)
except ValueError as exc:
    raise ImproperlyConfigured(f"FACTEUR_TRUSTED_PROXIES: {exc}") from exc
if env_bool("FACTEUR_BEHIND_TLS_PROXY") and not TRUSTED_PROXIES:
    # It used to trust forwarded headers from every client reaching the app.
    raise ImproperlyConfigured(
        "FACTEUR_BEHIND_TLS_PROXY is replaced by FACTEUR_TRUSTED_PROXIES: "
        "set it to the addresses of the reverse proxy."
    )
SECURE_PROXY_SSL_HEADER = (FORWARDED_PROTO_KEY, "https")

# Celery: Redis is the broker; tasks are acknowledged late so that a killed
# worker's task is handed to another one instead of being lost.
CELERY_BROKER_URL = os.environ.get("FACTEUR_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("FACTEUR_CELERY_EAGER")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Seconds a task may run: at the soft limit it is told to stop, at the hard one
# its process is replaced. Tasks that legitimately run longer set their own.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("FACTEUR_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("FACTEUR_TASK_TIME_LIMIT", 360)
# One step of a POP3 fetch: a mailbox that takes longer is fetched in several.
POP3_FETCH_STEP_SECONDS = env_int("FACTEUR_POP3_FETCH_STEP_SECONDS", 900)

# Mail servers.
MAIL_CA_FILE = os.environ.get("FACTEUR_MAIL_CA_FILE") or None
MAIL_CONNECT_TIMEOUT = env_int("FACTEUR_MAIL_CONNECT_TIMEOUT", 10)
IMAP_POOL_SIZE = env_int("FACTEUR_IMAP_POOL_SIZE", 2)
IMAP_POOL_IDLE_TIMEOUT = env_int("FACTEUR_IMAP_POOL_IDLE_TIMEOUT", 300)
IMAP_POOL_WAIT = env_int("FACTEUR_IMAP_POOL_WAIT", 10)
MESSAGES_PER_PAGE = env_int("FACTEUR_MESSAGES_PER_PAGE", 50)
# The authserv-id the office's own mail server writes in its Authentication-Results
# fields (RFC 8601). A trusted sender's remote content is shown only when that
# server's topmost field says DMARC passed for the From domain; empty: never.
AUTHSERV_ID = os.environ.get("FACTEUR_AUTHSERV_ID", "").strip().lower()

# Limits on what the parser and the renderer take from one message.
MAIL_MAX_RENDER_BYTES = env_int("FACTEUR_MAIL_MAX_RENDER_BYTES", 2 * 1024 * 1024)
MAIL_MAX_MESSAGE_BYTES = env_int("FACTEUR_MAIL_MAX_MESSAGE_BYTES", 50 * 1024 * 1024)
# CPU seconds that sanitising one message's HTML may take; beyond, its text is shown.
MAIL_SANITIZE_SECONDS = env_int("FACTEUR_MAIL_SANITIZE_SECONDS", 5)
# POP3: larger messages are fetched headers only (TOP), and kept so.
POP3_MAX_MESSAGE_BYTES = env_int("FACTEUR_POP3_MAX_MESSAGE_BYTES", 50 * 1024 * 1024)
# Seconds between two fetches of one POP3 account.
POP3_FETCH_INTERVAL = env_int("FACTEUR_POP3_FETCH_INTERVAL", 300)
# Times the IMAP account a POP3 account delivers into may refuse a message before
# Facteur keeps it aside, so that the mail behind it is delivered.
POP3_DELIVERY_MAX_TRIES = env_int("FACTEUR_POP3_DELIVERY_MAX_TRIES", 3)
# New mail: an open page asks Facteur (not the mail server) for news this often,
# in seconds; a worker checks the account's server for it when its last check is
# older than MAIL_CHECK_SECONDS, and every account at least every
# MAIL_BACKGROUND_CHECK_SECONDS, whether a page is open or not.
MAIL_POLL_SECONDS = env_int("FACTEUR_MAIL_POLL_SECONDS", 15)
MAIL_CHECK_SECONDS = env_int("FACTEUR_MAIL_CHECK_SECONDS", 30)
MAIL_BACKGROUND_CHECK_SECONDS = env_int("FACTEUR_MAIL_BACKGROUND_CHECK_SECONDS", 300)
# New Inbox messages a check opens and sanitises ahead of the person, at most.
MAIL_PRERENDER_COUNT = env_int("FACTEUR_MAIL_PRERENDER_COUNT", 10)

# "json": one JSON object a line (time, level, logger, message, and the request or
# task it happened in), for a log collector; "plain" for people.
LOG_FORMAT = os.environ.get("FACTEUR_LOG_FORMAT", "plain").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "ops.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("FACTEUR_LOG_LEVEL", "INFO")},
    # imapclient logs whole protocol lines at DEBUG, message bodies included:
    # never let them through.
    "loggers": {"imapclient": {"level": "WARNING"}},
}
# Celery would otherwise replace these handlers with its own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# Sending -----------------------------------------------------------------------
# Messages one person may queue per hour, so that a stolen session cannot turn
# the office into a source of spam.
SEND_RATE_LIMIT = env_int("FACTEUR_SEND_RATE_LIMIT", 200)
# Seconds before each new attempt after a temporary failure (network, 4xx); once
# they are used up the message is marked failed.
SEND_RETRY_DELAYS = [int(s) for s in env_list("FACTEUR_SEND_RETRY_DELAYS", "30,120,600,1800,3600")]
# A message "sending" for longer than this was left by a worker that died (a live
# send must finish within it): the sweep sends it again if the server never had
# it whole, and otherwise marks it sent, confirmed if its copy is in Sent.
SEND_LEASE = env_int("FACTEUR_SEND_LEASE", 600)
# A queued message whose task has not run this many seconds after it was due has
# lost its task (Redis emptied, worker gone): the sweep queues a new one.
SEND_SWEEP_GRACE = env_int("FACTEUR_SEND_SWEEP_GRACE", 120)
# Attempts at copying a sent message into the Sent folder, and the seconds between them.
SENT_COPY_RETRIES = env_int("FACTEUR_SENT_COPY_RETRIES", 5)
SENT_COPY_RETRY_DELAY = env_int("FACTEUR_SENT_COPY_RETRY_DELAY", 60)
# Seconds a sent message waits in the outbox so that the person can undo it; 0 sends at once.
SEND_UNDO_SECONDS = env_int("FACTEUR_SEND_UNDO_SECONDS", 5)

# Writing ------------------------------------------------------------------------
# The most a message's attachments may weigh together, in bytes.
UPLOAD_MAX_SIZE = env_int("FACTEUR_UPLOAD_MAX_SIZE", 25 * 1024 * 1024)
# Attachments uploaded but never sent are deleted after this many seconds.
UPLOAD_MAX_AGE = env_int("FACTEUR_UPLOAD_MAX_AGE", 2 * 24 * 3600)
# Seconds between automatic saves of the message being written into Drafts.
DRAFT_AUTOSAVE_SECONDS = env_int("FACTEUR_DRAFT_AUTOSAVE_SECONDS", 5)
# A reply quoting a long message posts its whole text with every save.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Operations ---------------------------------------------------------------------
# Beat queues a heartbeat this often and a worker records it; /readyz answers 503
# when the last one is older than HEARTBEAT_MAX_AGE (a worker or beat is down).
HEARTBEAT_SECONDS = env_int("FACTEUR_HEARTBEAT_SECONDS", 30)
HEARTBEAT_MAX_AGE = env_int("FACTEUR_HEARTBEAT_MAX_AGE", 3 * HEARTBEAT_SECONDS)
# /metrics is off (404) unless one of these is set; when both are, both must match.
METRICS_TOKEN = os.environ.get("FACTEUR_METRICS_TOKEN", "")
METRICS_ALLOWED_ADDRESSES = env_list("FACTEUR_METRICS_ALLOWED_ADDRESSES")

CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "ops.tasks.heartbeat",
        "schedule": float(HEARTBEAT_SECONDS),
        # A heartbeat that waited longer than its period in the queue says nothing.
        "options": {"expires": HEARTBEAT_SECONDS},
    },
    "sweep-outbox": {"task": "webmail.tasks.sweep_outbox", "schedule": 60.0},
    "fetch-due-pop3": {"task": "webmail.tasks.fetch_due_pop3", "schedule": 60.0},
    "check-due-mail": {"task": "webmail.tasks.check_due_mail", "schedule": 60.0},
}
