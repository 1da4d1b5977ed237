from django.db import migrations, models

from webmail.mime.parse import ParseLimits, parse_message
from webmail.search import BODY_TEXT_CHARS, body_text

#: Rows read at once: each holds a whole message.
BATCH = 200


def index_body_text(apps, schema_editor):
    """Read the body's text of the messages kept before bodies were searchable."""
    LocalMessage = apps.get_model("webmail", "LocalMessage")
    limits = ParseLimits(max_text_chars=BODY_TEXT_CHARS)
    batch = []
    for message in LocalMessage.objects.only("pk", "raw").iterator(chunk_size=BATCH):
        parsed = parse_message(bytes(message.raw), limits=limits)
        message.body_text = body_text(parsed.text, parsed.html)
        batch.append(message)
        if len(batch) == BATCH:
            LocalMessage.objects.bulk_update(batch, ["body_text"])
            batch = []
    LocalMessage.objects.bulk_update(batch, ["body_text"])


class Migration(migrations.Migration):
    dependencies = [
        ("webmail", "0008_conversations"),
    ]

    operations = [
        migrations.AddField(
            model_name="localmessage",
            name="body_text",
            field=models.TextField(blank=True, editable=False, verbose_name="text of the body"),
        ),
        migrations.RunPython(index_body_text, migrations.RunPython.noop, elidable=True),
    ]
