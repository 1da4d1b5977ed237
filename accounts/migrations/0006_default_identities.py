"""Every account has an identity from the start, so no page has to make one when shown."""

from django.db import migrations


def add_default_identities(apps, schema_editor):
    MailAccount = apps.get_model("accounts", "MailAccount")
    Identity = apps.get_model("accounts", "Identity")
    for account in MailAccount.objects.filter(identities__isnull=True).select_related("user"):
        full_name = f"{account.user.first_name} {account.user.last_name}".strip()
        Identity.objects.create(
            account=account, name=account.display_name or full_name, email=account.email
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_send_as_grants")]

    operations = [migrations.RunPython(add_default_identities, migrations.RunPython.noop)]
