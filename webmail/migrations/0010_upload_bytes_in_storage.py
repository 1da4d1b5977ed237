"""Uploads keep their bytes in Django's "default" storage, not in a database column."""

from django.core.files.base import ContentFile
from django.db import migrations, models

import webmail.models


def move_bytes_to_storage(apps, schema_editor):
    Upload = apps.get_model("webmail", "Upload")
    for upload in Upload.objects.filter(stored="").iterator():
        upload.stored.save("", ContentFile(bytes(upload.content)), save=False)
        upload.save(update_fields=["stored"])


def move_bytes_to_database(apps, schema_editor):
    Upload = apps.get_model("webmail", "Upload")
    for upload in Upload.objects.exclude(stored="").iterator():
        with upload.stored.open("rb") as stored:
            upload.content = stored.read()
        upload.save(update_fields=["content"])
        upload.stored.delete(save=False)


class Migration(migrations.Migration):
    dependencies = [
        ("webmail", "0009_localmessage_body_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="upload",
            name="stored",
            field=models.FileField(
                default="",
                max_length=255,
                upload_to=webmail.models.stored_upload_name,
                verbose_name="stored file",
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="upload",
            name="content",
            field=models.BinaryField(default=b"", verbose_name="content"),
        ),
        migrations.RunPython(move_bytes_to_storage, move_bytes_to_database),
        migrations.RemoveField(model_name="upload", name="content"),
    ]
