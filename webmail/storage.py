"""Where attachments being written live: Django's "default" storage, from the environment.

An attachment uploaded in the editor is kept until its message is sent, saved as
a draft or dropped; the web node that sends it may not be the one that took the
upload. On one machine a folder does (``FACTEUR_UPLOADS_DIR``); past one machine
every web node and worker must share it: an S3 bucket (``FACTEUR_STORAGE=s3``),
through django-storages, on AWS or any S3-compatible server.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

FILESYSTEM = "filesystem"
S3 = "s3"


def uploads_storage(environ: Mapping[str, str], data_dir: Path) -> dict:
    """The ``STORAGES["default"]`` entry that ``FACTEUR_STORAGE`` and ``FACTEUR_S3_*`` ask for."""
    kind = environ.get("FACTEUR_STORAGE", "").strip().lower() or FILESYSTEM
    if kind == FILESYSTEM:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": str(environ.get("FACTEUR_UPLOADS_DIR") or data_dir / "uploads"),
                # Readable by Facteur's own user only: these are people's attachments.
                "file_permissions_mode": 0o600,
                "directory_permissions_mode": 0o700,
            },
        }
    if kind != S3:
        raise ImproperlyConfigured(
            f"FACTEUR_STORAGE must be {FILESYSTEM!r} or {S3!r}, not {kind!r}."
        )
    bucket = environ.get("FACTEUR_S3_BUCKET", "").strip()
    if not bucket:
        raise ImproperlyConfigured("FACTEUR_STORAGE=s3 needs FACTEUR_S3_BUCKET.")
    endpoint = environ.get("FACTEUR_S3_ENDPOINT_URL", "").strip() or None
    options = {
        "bucket_name": bucket,
        "location": "uploads",
        "endpoint_url": endpoint,
        "region_name": environ.get("FACTEUR_S3_REGION", "").strip() or None,
        # Unset: boto3's own chain (AWS_* variables, an instance or task role).
        "access_key": environ.get("FACTEUR_S3_ACCESS_KEY_ID", "").strip() or None,
        "secret_key": environ.get("FACTEUR_S3_SECRET_ACCESS_KEY", "").strip() or None,
        # Objects stay private to the bucket's owner; Facteur never hands out their URLs.
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
    }
    if endpoint:
        # S3-compatible servers (MinIO, Ceph, Garage) are addressed by path, not by
        # a bucket subdomain that their DNS does not have.
        options["addressing_style"] = "path"
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
