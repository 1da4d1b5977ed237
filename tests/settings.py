"""Settings for the test suite: production settings with test keys.

Tests run with FACTEUR_DEBUG off, as production does, so they see the same
security settings; they only bring their own keys and plain static storage.
"""

import os
import tempfile

os.environ.setdefault("FACTEUR_SECRET_KEY", "tests-only-secret-key-not-for-production")
# A fixed test key, so that rows encrypted by one test process decrypt in another.
os.environ.setdefault("FACTEUR_CREDENTIALS_KEYS", "mdWNpC9yrQXkxRzdpVnmwTDwydsO35jcRUo0Sn4Rz3g=")
os.environ.setdefault("FACTEUR_SECURE_COOKIES", "false")
# Uploads go to a folder of this run (the Celery workers it starts inherit it).
os.environ.setdefault(
    "FACTEUR_UPLOADS_DIR",
    os.path.join(tempfile.gettempdir(), f"facteur-test-uploads-{os.getpid()}"),
)

from webmail.settings import *  # noqa: F403

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]

# The send path's tests run a real Celery worker in another process, and it must
# see the rows the tests commit. An in-memory SQLite database is private to its
# process, so the test database is a file, named per run so that runs at the
# same time do not share it. PostgreSQL's test database is shared by nature.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"facteur-test-{os.getpid()}.sqlite3")
    }
