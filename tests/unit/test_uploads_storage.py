"""Attachments being written live in Django's "default" storage, chosen by the environment."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from tests.support.accounts import unreachable_account
from webmail.forms import ComposeForm
from webmail.models import Upload
from webmail.storage import uploads_storage


def test_by_default_uploads_are_files_in_the_data_folder_readable_by_facteur_only():
    storage = uploads_storage({}, Path("/var/lib/facteur"))
    assert storage["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert storage["OPTIONS"]["location"] == "/var/lib/facteur/uploads"
    assert storage["OPTIONS"]["file_permissions_mode"] == 0o600
    elsewhere = uploads_storage({"FACTEUR_UPLOADS_DIR": "/srv/uploads"}, Path("/data"))
    assert elsewhere["OPTIONS"]["location"] == "/srv/uploads"


def test_s3_takes_its_bucket_endpoint_region_and_credentials_from_the_environment():
    storage = uploads_storage(
        {
            "FACTEUR_STORAGE": "S3",
            "FACTEUR_S3_BUCKET": "office-uploads",
            "FACTEUR_S3_ENDPOINT_URL": "http://minio:9000",
            "FACTEUR_S3_REGION": "eu-west-3",
            "FACTEUR_S3_ACCESS_KEY_ID": "key",
            "FACTEUR_S3_SECRET_ACCESS_KEY": "secret",
        },
        Path("/data"),
    )
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storage["OPTIONS"]
    assert options["bucket_name"] == "office-uploads"
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["region_name"] == "eu-west-3"
    assert (options["access_key"], options["secret_key"]) == ("key", "secret")
    assert options["addressing_style"] == "path"
    assert options["default_acl"] is None


def test_s3_without_credentials_leaves_them_to_boto3_and_aws_to_its_own_addressing():
    options = uploads_storage({"FACTEUR_STORAGE": "s3", "FACTEUR_S3_BUCKET": "b"}, Path("/d"))[
        "OPTIONS"
    ]
    assert options["access_key"] is None and options["secret_key"] is None
    assert options["endpoint_url"] is None
    assert "addressing_style" not in options


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FACTEUR_STORAGE": "s3"}, "FACTEUR_S3_BUCKET"),
        ({"FACTEUR_STORAGE": "ftp"}, "FACTEUR_STORAGE must be"),
    ],
)
def test_a_storage_that_cannot_work_stops_facteur_at_start(environ, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        uploads_storage(environ, Path("/data"))


@pytest.fixture
def uploads_dir(tmp_path, settings) -> Path:
    settings.STORAGES = {**settings.STORAGES, "default": uploads_storage({}, tmp_path)}
    return tmp_path / "uploads"


def stored_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.django_db
def test_an_upload_keeps_its_bytes_in_the_storage_under_a_random_name(
    uploads_dir, django_user_model
):
    person = django_user_model.objects.create_user(username="ines")
    upload = Upload.objects.create(
        user=person, filename="../../Budget.xlsx", content_type="x/y", size=5, content=b"bytes"
    )
    (name,) = stored_files(uploads_dir)
    assert upload.stored.name == name
    assert "Budget" not in name and "/" not in name
    assert (uploads_dir / name).read_bytes() == b"bytes"
    assert oct((uploads_dir / name).stat().st_mode & 0o777) == oct(0o600)
    assert Upload.objects.get(pk=upload.pk).content == b"bytes"


@pytest.mark.django_db
def test_deleting_uploads_deletes_their_files_once_committed(
    uploads_dir, django_user_model, django_capture_on_commit_callbacks
):
    person = django_user_model.objects.create_user(username="ines")
    for number in range(3):
        Upload.objects.create(
            user=person, filename=f"{number}.txt", content_type="text/plain", size=1, content=b"x"
        )
    kept = Upload.objects.last()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        Upload.objects.exclude(pk=kept.pk).delete()
    assert len(stored_files(uploads_dir)) == 3, "deleted before the deletion was committed"
    for callback in callbacks:
        callback()
    assert stored_files(uploads_dir) == [kept.stored.name]


@pytest.mark.django_db
def test_a_row_that_cannot_be_written_leaves_no_file(uploads_dir, django_user_model):
    person = django_user_model.objects.create_user(username="ines")
    with pytest.raises(IntegrityError), transaction.atomic():
        Upload.objects.create(
            user=person, filename=None, content_type="text/plain", size=1, content=b"x"
        )
    assert stored_files(uploads_dir) == []


@pytest.mark.django_db
def test_orphan_files_are_deleted_once_old_rows_files_and_new_ones_are_kept(
    uploads_dir, django_user_model, settings
):
    person = django_user_model.objects.create_user(username="ines")
    upload = Upload.objects.create(
        user=person, filename="a", content_type="text/plain", size=1, content=b"x"
    )
    (uploads_dir / "orphan-old").write_bytes(b"left by a crash")
    (uploads_dir / "orphan-new").write_bytes(b"its row is being written")
    long_ago = (timezone.now() - timedelta(seconds=settings.UPLOAD_MAX_AGE + 60)).timestamp()
    for name in ("orphan-old", upload.stored.name):
        os.utime(uploads_dir / name, (long_ago, long_ago))

    assert Upload.delete_orphans() == 1
    assert stored_files(uploads_dir) == sorted([upload.stored.name, "orphan-new"])


@pytest.mark.django_db
def test_no_orphan_sweep_fails_before_anything_was_uploaded(uploads_dir):
    assert Upload.delete_orphans() == 0


@pytest.fixture
def unwritable_storage(tmp_path, settings) -> None:
    """Uploads meant for a folder that cannot be made: as a storage out of reach."""
    (tmp_path / "a-file").write_bytes(b"")
    environ = {"FACTEUR_UPLOADS_DIR": str(tmp_path / "a-file" / "x")}
    settings.STORAGES = {**settings.STORAGES, "default": uploads_storage(environ, tmp_path)}


@pytest.mark.django_db
def test_an_upload_the_storage_cannot_keep_gets_a_clear_answer(
    unwritable_storage, client, django_user_model
):
    person = django_user_model.objects.create_user(username="ines")
    account = unreachable_account(person)
    client.force_login(person)
    response = client.post(
        reverse("webmail:upload", args=[account.pk]),
        {"file": SimpleUploadedFile("a.txt", b"hello", "text/plain")},
    )
    assert response.status_code == 503
    assert "could not be kept" in response.json()["error"]
    assert not Upload.objects.exists()


@pytest.mark.django_db
def test_attachments_the_storage_cannot_read_are_a_form_error_not_a_500(
    uploads_dir, django_user_model
):
    person = django_user_model.objects.create_user(username="ines")
    account = unreachable_account(person)
    upload = Upload.objects.create(
        user=person, filename="a.txt", content_type="text/plain", size=5, content=b"hello"
    )
    data = {"identity": account.sending_identities()[0].pk, "to": "bob@example.test"}
    form = ComposeForm({**data, "attachments": [upload.pk]}, account=account, action="send")
    assert form.is_valid(), form.errors
    assert form.composition().attachments[0].content == b"hello"

    (uploads_dir / upload.stored.name).unlink()
    form = ComposeForm({**data, "attachments": [upload.pk]}, account=account, action="send")
    assert not form.is_valid()
    assert "cannot be read just now" in str(form.errors["attachments"])
