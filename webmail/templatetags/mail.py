"""Template helpers for the mail screens."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from webmail.mailstore.base import Folder

register = template.Library()

SPECIAL_FOLDER_NAMES = {
    "\\Inbox": pgettext_lazy("folder", "Inbox"),
    "\\Drafts": pgettext_lazy("folder", "Drafts"),
    "\\Sent": pgettext_lazy("folder", "Sent"),
    "\\Archive": pgettext_lazy("folder", "Archive"),
    "\\Junk": pgettext_lazy("folder", "Junk"),
    "\\Trash": pgettext_lazy("folder", "Trash"),
}


@register.filter
def folder_label(folder: Folder) -> str:
    """Special-use folders in the person's language; the others by their own name."""
    if folder.name.upper() == "INBOX":
        return str(SPECIAL_FOLDER_NAMES["\\Inbox"])
    if folder.special_use in SPECIAL_FOLDER_NAMES and folder.depth == 0:
        return str(SPECIAL_FOLDER_NAMES[folder.special_use])
    return folder.leaf


@register.filter
def mail_date(value: datetime | None) -> str:
    """A time today, a day this year, a full date before, as mail clients show them,
    in a <time> element that carries the exact moment."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    today = timezone.localdate()
    if local.date() == today:
        shown = date_format(local, "TIME_FORMAT")
    elif local.year == today.year:
        shown = date_format(local, "MONTH_DAY_FORMAT")
    else:
        shown = date_format(local, "SHORT_DATE_FORMAT")
    return format_html('<time datetime="{}">{}</time>', local.isoformat(), shown)


@register.filter
def full_date(value: datetime | None) -> str:
    if value is None:
        return str(_("unknown date"))
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


@register.filter
def address_list(addresses) -> str:
    return ", ".join(
        f"{a.name} <{a.email}>" if a.name and a.email else (a.name or a.email) for a in addresses
    )


@register.inclusion_tag("mail/_sync_status.html", takes_context=True)
def sync_status(context: template.Context, account, folder: str | None) -> dict:
    """The new-mail state of ``account``, which the page then keeps polling."""
    from webmail import sync
    from webmail.views.sync import status_context

    return {
        **status_context(account, sync.state_of(account), folder),
        "csrf_token": context.get("csrf_token"),
    }
