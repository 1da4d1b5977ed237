"""What the folder pane shows besides the folders themselves: which folders, and the quota."""

from __future__ import annotations

from collections.abc import Sequence

from django import template

from accounts.models import MailAccount
from webmail import mailstore
from webmail.mailstore.base import Folder

register = template.Library()


@register.filter
def in_pane(folders: Sequence[Folder], current: str | None = None) -> list[Folder]:
    """The folders the pane lists: the subscribed ones, when the account has any.

    INBOX and the folder being shown are always listed, and so is every folder
    holding one that is (so that a nested folder keeps its place in the tree).
    An account without subscriptions (a server that keeps none) lists them all.
    """
    if not any(f.subscribed for f in folders if f.special_use != "\\Inbox"):
        return list(folders)
    kept: set[str] = set()
    for f in folders:
        if f.subscribed or f.special_use == "\\Inbox" or f.name == current:
            path = f.path
            kept.update(f.delimiter.join(path[: depth + 1]) for depth in range(len(path)))
    return [f for f in folders if f.name in kept]


@register.inclusion_tag("mail/_quota.html")
def quota_usage(account: MailAccount) -> dict:
    """How full the account's mailbox is, as the last background check learnt it."""
    return {"quota": mailstore.for_account(account).quota()}
