"""Django, set up for a benchmark: the project's settings, on a database of its own
unless DATABASE_URL names one, so that a benchmark never touches the demo's."""

import os
import tempfile

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
os.environ.setdefault("FACTEUR_DEBUG", "1")
os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='facteur-bench-db-')}/db"
)
django.setup()
