"""Keeping the IMAP session pool, and the uploads storage, in step with the rows they serve."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from accounts.models import MailAccount
from webmail.mailstore.pool import pool
from webmail.models import Upload

logger = logging.getLogger(__name__)


@receiver(post_delete, sender=MailAccount, dispatch_uid="webmail.discard_deleted_account")
def discard_deleted_account(sender, instance: MailAccount, **kwargs) -> None:
    # Changed settings reconnect by themselves; a deleted account's sessions would only time out.
    pool.discard(instance)


@receiver(post_delete, sender=Upload, dispatch_uid="webmail.delete_stored_upload")
def delete_stored_upload(sender, instance: Upload, **kwargs) -> None:
    # Only once the deletion is committed: a rolled-back one keeps a row that needs its file.
    name, storage = instance.stored.name, instance.stored.storage
    if not name:
        return

    def delete() -> None:
        try:
            storage.delete(name)
        except Exception:
            # The row is gone either way; `Upload.delete_orphans` retries later.
            logger.warning("stored upload %s not deleted", name, exc_info=True)

    transaction.on_commit(delete)
