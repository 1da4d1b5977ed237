"""Attachments kept in an S3 bucket (``FACTEUR_STORAGE=s3``) reach the recipient.

The bucket is on moto's S3-compatible server, started here on loopback; the
message goes through the compose view, Redis, a real Celery worker, Postfix
and Dovecot, as in production with several web nodes sharing one bucket.
"""

from __future__ import annotations

import email
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.integration.celery_worker import STARTUP_TIMEOUT, free_port, wait_for
from tests.support.accounts import make_account, unreachable_account
from tests.support.compose import compose_url, form_fields
from tests.support.mailboxes import arrived
from webmail.models import OutgoingMessage, Upload
from webmail.storage import uploads_storage

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BUCKET = "facteur-uploads"


def moto_binary() -> str:
    binary = Path(sys.executable).with_name("moto_server")
    if binary.exists():
        return str(binary)
    found = shutil.which("moto_server")
    if found is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]', a dev dependency)")
    return found


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=1):
            return True
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port, with an empty bucket."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [moto_binary(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: process.poll() is not None or answers(url), what="moto_server")
        assert process.poll() is None, f"moto_server exited; see {log}"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=STARTUP_TIMEOUT)


@pytest.fixture
def s3_uploads(s3_endpoint, settings):
    """Facteur's "default" storage made from the FACTEUR_S3_* variables, on moto; the bucket."""
    import boto3

    environ = {
        "FACTEUR_STORAGE": "s3",
        "FACTEUR_S3_BUCKET": BUCKET,
        "FACTEUR_S3_ENDPOINT_URL": s3_endpoint,
        "FACTEUR_S3_REGION": "us-east-1",
        "FACTEUR_S3_ACCESS_KEY_ID": "facteur",
        "FACTEUR_S3_SECRET_ACCESS_KEY": secrets.token_urlsafe(12),
    }
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="facteur",
        aws_secret_access_key=environ["FACTEUR_S3_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {**settings.STORAGES, "default": uploads_storage(environ, Path("/unused"))}

    def keys() -> list[str]:
        listing = client.list_objects_v2(Bucket=BUCKET)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    yield keys
    for key in keys():
        client.delete_object(Bucket=BUCKET, Key=key)


class Mailbox:
    def __init__(self, mail_server) -> None:
        self.address = f"user-{uuid.uuid4().hex[:12]}@{mail_server.domain}"
        self.password = secrets.token_urlsafe(12)
        mail_server.add_user(self.address, self.password)


def test_an_attachment_uploaded_to_the_bucket_is_sent_and_its_object_deleted(
    s3_uploads, mail_server, send_worker, django_user_model, client, settings
):
    settings.SEND_UNDO_SECONDS = 0
    person = django_user_model.objects.create_user(username=f"ines-{uuid.uuid4().hex[:6]}")
    alice = make_account(person, mail_server, Mailbox(mail_server))
    bob = Mailbox(mail_server)
    client.force_login(person)
    payload = bytes(range(256)) * 400
    upload = client.post(
        reverse("webmail:upload", args=[alice.pk]),
        {"file": SimpleUploadedFile("Plan du site.pdf", payload, "application/pdf")},
    ).json()

    (key,) = s3_uploads()
    assert key == "uploads/" + Upload.objects.get(pk=upload["id"]).stored.name
    assert "Plan" not in key

    fields = form_fields(client, compose_url(alice))
    fields.update(
        to=bob.address,
        subject="Le plan",
        attachments=[upload["id"]],
        action="send",
        html="<p>Ci-joint.</p>",
    )
    response = client.post(compose_url(alice), fields)
    assert response.status_code == 302
    row = OutgoingMessage.objects.get(account=alice)

    (_flags, raw), *_ = arrived(mail_server, bob, row.message_id).values()
    received = email.message_from_bytes(raw, policy=policy.default)
    (part,) = list(received.iter_attachments())
    assert part.get_filename() == "Plan du site.pdf"
    assert part.get_content() == payload
    assert not Upload.objects.exists()
    assert s3_uploads() == []


def test_orphans_in_the_bucket_are_swept_and_rows_objects_kept(
    s3_uploads, django_user_model, settings
):
    from django.core.files.storage import default_storage

    person = django_user_model.objects.create_user(username=f"ines-{uuid.uuid4().hex[:6]}")
    kept = Upload.objects.create(
        user=person, filename="a.txt", content_type="text/plain", size=1, content=b"a"
    )
    default_storage.save("orphan", SimpleUploadedFile("orphan", b"left by a crash"))
    assert s3_uploads() == sorted([f"uploads/{kept.stored.name}", "uploads/orphan"])

    settings.UPLOAD_MAX_AGE = -60  # every file counts as old enough
    assert Upload.delete_orphans() == 1
    assert s3_uploads() == [f"uploads/{kept.stored.name}"]
    assert Upload.objects.get().content == b"a"


def test_a_bucket_out_of_reach_gives_a_clear_answer_to_an_upload(
    django_user_model, client, settings
):
    environ = {
        "FACTEUR_STORAGE": "s3",
        "FACTEUR_S3_BUCKET": BUCKET,
        "FACTEUR_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "FACTEUR_S3_REGION": "us-east-1",
        "FACTEUR_S3_ACCESS_KEY_ID": "facteur",
        "FACTEUR_S3_SECRET_ACCESS_KEY": "unused",
    }
    settings.STORAGES = {**settings.STORAGES, "default": uploads_storage(environ, Path("/unused"))}
    person = django_user_model.objects.create_user(username=f"ines-{uuid.uuid4().hex[:6]}")
    account = unreachable_account(person)
    client.force_login(person)
    response = client.post(
        reverse("webmail:upload", args=[account.pk]),
        {"file": SimpleUploadedFile("a.txt", b"hello", "text/plain")},
    )
    assert response.status_code == 503
    assert "could not be kept" in response.json()["error"]
    assert not Upload.objects.exists()
