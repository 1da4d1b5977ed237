"""Keeping the IMAP session pool in step with the accounts it serves."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from accounts.models import MailAccount
from webmail.mailstore.pool import pool


@receiver(post_delete, sender=MailAccount, dispatch_uid="webmail.discard_deleted_account")
def discard_deleted_account(sender, instance: MailAccount, **kwargs) -> None:
    # Changed settings reconnect by themselves; a deleted account's sessions would only time out.
    pool.discard(instance)
