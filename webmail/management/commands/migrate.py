"""Django's ``migrate``, one at a time on PostgreSQL.

Every web replica runs ``migrate`` as it starts (docker-compose.yml): replicas
started together would apply the same migration at once and all but one fail.
A PostgreSQL advisory lock (scoped to the database) makes them take turns; the
later ones then find nothing left to apply.
"""

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

#: The advisory lock's key: Facteur's own, any constant other programs do not use.
LOCK_KEY = 0x46616374_6D696772  # "Factmigr"


class Command(DjangoMigrate):
    def handle(self, *args, **options) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            super().handle(*args, **options)
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            super().handle(*args, **options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
