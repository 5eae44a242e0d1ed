"""Portside settings: one module, driven by environment variables (all listed in README.md)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def envsecret(name: str, generated_file: Path, nbytes: int = 48) -> str:
    """NAME, else the file NAME_FILE names, else a secret generated once into var/ (0600)."""
    if value := os.environ.get(name):
        return value
    if path := os.environ.get(f"{name}_FILE"):
        return Path(path).read_text().strip()
    generated_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not each write their own key.
        fd = os.open(generated_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return generated_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(nbytes))
    return generated_file.read_text().strip()


def database_from_url(url: str) -> dict:
    """postgres://user:pass@host:port/name or sqlite:///path, without another dependency."""
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
        }
    if parsed.scheme == "sqlite":
        return sqlite_database(Path(unquote(parsed.path)))
    raise ValueError(f"CONSOLE_DATABASE_URL: unsupported scheme {parsed.scheme!r}")


def sqlite_database(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # WAL lets the sampler write while pages read; IMMEDIATE avoids "database is locked"
            # surprises when a read transaction later wants to write.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }


DATA_DIR = Path(envstr("CONSOLE_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = envsecret("CONSOLE_SECRET_KEY", DATA_DIR / "secret_key")
# Tokens are signed with their own key: leaking one never forges the other.
JWT_SIGNING_KEY = envsecret("CONSOLE_JWT_KEY", DATA_DIR / "jwt_key")
JWT_ISSUER = "portside"
JWT_AUDIENCE = "portside-api"
JWT_ACCESS_SECONDS = envint("CONSOLE_ACCESS_TOKEN_SECONDS", 15 * 60)
JWT_REFRESH_SECONDS = envint("CONSOLE_REFRESH_TOKEN_SECONDS", 7 * 24 * 3600)
JWT_LEEWAY_SECONDS = 30

DEBUG = envbool("CONSOLE_DEBUG", False)

# LAN mode (serve --lan) adds the machine's own addresses; nothing else ever passes.
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS += [h for h in envstr("CONSOLE_EXTRA_HOSTS").split(",") if h.strip()]
LAN_MODE = envbool("CONSOLE_LAN", False)
# serve --tls sets this: cookies then never travel over plain HTTP.
CONSOLE_TLS = envbool("CONSOLE_TLS", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "ninja",
    "console",
    "ports",
    "health",
]

MIDDLEWARE = [
    "console.middleware.RequestTimingMiddleware",
    # Outermost after timing: records every 401/403, including the allowlist's and CSRF's.
    "console.security.middleware.AuthorizationAuditMiddleware",
    "console.security.middleware.AllowedNetworksMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "console.middleware.ConsoleLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "console.error_pages.MethodNotAllowedPageMiddleware",  # innermost: renders with htmx, CSP nonce
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.console",
            ],
        },
    },
]

if database_url := envstr("CONSOLE_DATABASE_URL"):
    DATABASES = {"default": database_from_url(database_url)}
else:
    DATABASES = {"default": sqlite_database(DATA_DIR / "portside.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if redis_url := envstr("CONSOLE_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": envstr("CONSOLE_REDIS_PREFIX", "portside")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "ports:list"
LOGOUT_REDIRECT_URL = "console:login"
SIGN_IN_LINK_SECONDS = 15 * 60

# Cookies and headers: the console can kill processes, so a cross-site request must never ride
# on a session.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_AGE = envint("CONSOLE_SESSION_SECONDS", 12 * 3600)
CSRF_COOKIE_SAMESITE = "Strict"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = CONSOLE_TLS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("CONSOLE_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# A local tool has no collectstatic step: WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

CONSOLE_CONFIG_FILE = Path(envstr("CONSOLE_CONFIG", str(DATA_DIR / "portside.toml")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # A sign-in link's token is in its path: no log line may hold it (console/secret_paths.py).
    "filters": {"secret_paths": {"()": "console.foundation.secret_paths.RedactSecretPaths"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["secret_paths"],
        }
    },
    "root": {"handlers": ["console"], "level": envstr("CONSOLE_LOG_LEVEL", "INFO")},
    "loggers": {
        # These print request paths ("Gone: /login/link/...", uvicorn's "WebSocket /path"):
        # redacted on the logger itself, before any handler (uvicorn has its own) sees them.
        "django.request": {"level": "ERROR", "filters": ["secret_paths"]},
        "django.security.csrf": {"filters": ["secret_paths"]},
        "uvicorn.error": {"filters": ["secret_paths"]},
        "uvicorn.access": {"level": "WARNING"},
    },
}
# Background services run by the ASGI lifespan (serve) and by `manage.py monitor`. With several
# web workers, set CONSOLE_RUN_SERVICES=0 for them and run one `monitor`, or every worker samples.
CONSOLE_RUN_SERVICES = envbool("CONSOLE_RUN_SERVICES", True)
CONSOLE_SERVICES = [
    "ports.sampler.run",
    # Probes each new listener on all interfaces as the sampler sees it (needs the sampler here).
    "console.security.exposure_watch.run",
]
CONSOLE_SAMPLE_INTERVAL_MS = envint("CONSOLE_SAMPLE_INTERVAL_MS", 250)
# How often an open websocket asks the gate again whether its session or token still holds.
CONSOLE_WS_RECHECK_SECONDS = envint("CONSOLE_WS_RECHECK_SECONDS", 5)
CONSOLE_EVENT_RETENTION_DAYS = envint("CONSOLE_EVENT_RETENTION_DAYS", 30)
CONSOLE_SERVICES.append("health.scheduler.run")

# Health checks. A command check runs a program on this machine: never from the LAN unless
# explicitly allowed.
CONSOLE_ALLOW_COMMAND_CHECKS = envbool("CONSOLE_ALLOW_COMMAND_CHECKS", False)


def _check_networks(name: str) -> str:
    """CIDRs (commas or spaces) where checks may connect besides loopback and this machine;
    a typo stops the start rather than quietly allowing something else."""
    import ipaddress

    from django.core.exceptions import ImproperlyConfigured

    text = envstr(name)
    for part in text.replace(",", " ").split():
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {part!r} is not a network (write it like 10.0.0.0/8)"
            ) from None
    return text


# Check networks on the Security page add to these (health.outbound); LAN mode adds nothing.
CONSOLE_CHECK_NETWORKS = _check_networks("CONSOLE_CHECK_NETWORKS")
HEALTH_RESULT_RETENTION_HOURS = envint("CONSOLE_HEALTH_RESULT_HOURS", 48)
HEALTH_ROLLUP_RETENTION_DAYS = envint("CONSOLE_HEALTH_ROLLUP_DAYS", 90)
HEALTH_ALERT_RETENTION_DAYS = envint("CONSOLE_HEALTH_ALERT_DAYS", 30)
HEALTH_PRUNE_INTERVAL_S = envint("CONSOLE_HEALTH_PRUNE_SECONDS", 3600)
HEALTH_MAX_CONCURRENCY = envint("CONSOLE_HEALTH_CONCURRENCY", 256)
HEALTH_ALERT_TIMEOUT_S = envint("CONSOLE_HEALTH_ALERT_TIMEOUT", 5)
HEALTH_PAGERDUTY_URL = envstr("CONSOLE_PAGERDUTY_URL", "https://events.pagerduty.com/v2/enqueue")
HEALTH_IMPORT_MAX_BYTES = 256 * 1024
# E-mail alerts: printed to the console log unless an SMTP host is given.
MAILERS = {
    "default": (
        {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": envstr("CONSOLE_EMAIL_HOST"),
                "port": envint("CONSOLE_EMAIL_PORT", 25),
                "timeout": 10,
            },
        }
        if envstr("CONSOLE_EMAIL_HOST")
        else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    )
}
DEFAULT_FROM_EMAIL = envstr("CONSOLE_EMAIL_FROM", "portside@localhost")
# Security housekeeping, hourly: prunes expired token records and old sign-in failures, which
# would otherwise only grow.
CONSOLE_SERVICES.append("console.maintenance.run")
# Audit entries older than this many days are pruned by that hourly job (0: keep them all).
CONSOLE_AUDIT_RETENTION_DAYS = envint("CONSOLE_AUDIT_RETENTION_DAYS", 365)
