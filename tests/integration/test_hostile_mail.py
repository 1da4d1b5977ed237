"""Hostile mail against the real Dovecot: a message costs its reader a bounded amount of work."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from tests.integration.test_reading_views import message, message_url
from webmail.localmail.demo import solid_png
from webmail.mailstore.imap import ImapStore

pytestmark = pytest.mark.integration

OVER_BUDGET = "too costly to show; its text is shown instead"


def _frame(client: Client, page: str) -> str:
    url = unescape(re.search(r'<iframe[^>]*src="([^"]+)"', page).group(1))
    return client.get(url).content.decode()


def test_a_message_over_its_sanitising_budget_is_shown_as_text_with_a_notice(
    signed_in_client, mail_account, mail_server, mail_user, settings
):
    settings.MAIL_SANITIZE_SECONDS = 0
    html = "<p>Dear reader, <b>see</b> https://example.com/x).</p>" * 300
    msg = message("Costly", text="The text version, <kept> as text.", html=html)
    mail_server.deliver(mail_user.address, msg.as_bytes())

    response = signed_in_client.get(message_url(mail_account, 1))

    assert response.status_code == 200
    page = response.content.decode()
    assert OVER_BUDGET in page
    body = _frame(signed_in_client, page)
    assert "The text version, &lt;kept&gt; as text." in body
    assert "<b>" not in body


def test_a_message_within_its_budget_is_shown_as_html(
    signed_in_client, mail_account, mail_server, mail_user
):
    msg = message("Cheap", html="<p><b>Bold</b> text</p>")
    mail_server.deliver(mail_user.address, msg.as_bytes())

    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()

    assert OVER_BUDGET not in page
    assert "<b>Bold</b>" in _frame(signed_in_client, page)


def test_html_alone_over_budget_shows_its_text(
    signed_in_client, mail_account, mail_server, mail_user, settings
):
    settings.MAIL_SANITIZE_SECONDS = 0
    raw = (
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Only HTML\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        + b"<p>Caf&eacute; <i>ouvert</i></p><script>x</script>"
        * 300
    )
    mail_server.deliver(mail_user.address, raw)

    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()

    body = _frame(signed_in_client, page)
    assert "Café ouvert" in body
    assert "<i>" not in body and "<script>" not in body


def test_inline_images_of_a_message_over_the_cache_limit_cost_one_fetch(
    signed_in_client, mail_account, mail_server, mail_user, settings, monkeypatch
):
    # Over the limit, the message's bytes are not kept: its images must be.
    settings.MAIL_MAX_RENDER_BYTES = 2_000
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]
    html = "".join(f'<img src="cid:image{n}@x">' for n in range(len(colours))) + "x" * 3_000
    msg = message("Big with images", html=html)
    for n, rgb in enumerate(colours):
        msg.get_payload()[1].add_related(
            solid_png(8, 8, rgb), maintype="image", subtype="png", cid=f"<image{n}@x>"
        )
    mail_server.deliver(mail_user.address, msg.as_bytes())
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    body = _frame(signed_in_client, page)
    urls = [unescape(u) for u in re.findall(r'<img[^>]*src="([^"]+)"', body)]
    fetches = []
    real = ImapStore.message
    monkeypatch.setattr(ImapStore, "message", lambda self, *a: fetches.append(a) or real(self, *a))

    images = [Client().get(url).content for url in urls * 2]

    assert images == [solid_png(8, 8, rgb) for rgb in colours] * 2
    assert len(fetches) == 1


def test_an_attachment_name_from_hostile_parameters_is_clean(
    signed_in_client, mail_account, mail_server, mail_user
):
    continuations = "".join(f"; filename*{i}*=utf-8''%41%5C%22bbbb" for i in range(50))
    quoted = '"' + '\\"\\\\x' * 2_500 + '"'
    raw = (
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: Names\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        f"--b\r\nContent-Type: application/octet-stream; name={quoted}\r\n"
        f"Content-Disposition: attachment{continuations}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nZGF0YQ==\r\n--b--\r\n"
    ).encode()
    mail_server.deliver(mail_user.address, raw)
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    url = unescape(re.search(r'href="([^"]+/part/[^"]+)"', page).group(1))

    response = signed_in_client.get(url)

    assert response.status_code == 200 and response.content == b"data"
    disposition = response["Content-Disposition"]
    name = disposition.split("filename", 1)[1]
    assert "\\" not in name and name.count('"') <= 2
    assert len(disposition) < 1_000


def test_a_conversation_fetches_a_bounded_number_of_bytes(
    signed_in_client, mail_account, mail_server, mail_user, monkeypatch
):
    from webmail.views import conversations

    monkeypatch.setattr(conversations, "MAX_FETCHED_BYTES", 60_000)
    first = message("Thread", text="a" * 40_000)
    mail_server.deliver(mail_user.address, first.as_bytes())
    for n in range(3):
        reply = message("Re: Thread", text=f"reply {n} " + "b" * 40_000)
        reply["In-Reply-To"] = first["Message-ID"]
        reply["References"] = first["Message-ID"]
        mail_server.deliver(mail_user.address, reply.as_bytes())
    fetches = []
    real = ImapStore.message
    monkeypatch.setattr(ImapStore, "message", lambda self, *a: fetches.append(a) or real(self, *a))

    url = reverse("webmail:conversation", args=[mail_account.pk, 4]) + "?folder=INBOX"
    response = signed_in_client.get(url)

    assert response.status_code == 200
    # The newest two make the budget; the older two are counted as not shown.
    assert sorted(uid for _folder, uid in fetches) == [3, 4]
    assert "2 older messages of this conversation are not shown" in response.content.decode()


def test_a_pop3_fetch_over_its_time_limit_goes_on_in_another_step(
    person, mail_server, mail_user, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    from accounts.models import Protocol
    from tests.support.accounts import make_account
    from webmail import sync, tasks
    from webmail.models import LocalMailbox

    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    for n in range(3):
        mail_server.deliver(mail_user.address, message(f"Step {n}").as_bytes())
    real_recorder = sync.progress_recorder

    def stopped_after_two(account):
        record = real_recorder(account)

        def progress(done: int, total: int) -> None:
            record(done, total)
            if done == 2:
                # Where the worker's signal would interrupt the fetch.
                raise SoftTimeLimitExceeded

        return progress

    queued = []
    monkeypatch.setattr(sync, "progress_recorder", stopped_after_two)
    monkeypatch.setattr(tasks.fetch_pop3, "delay", lambda pk: queued.append(pk))

    tasks.fetch_pop3(account.pk)

    assert account.local_messages.count() == 2
    assert queued == [account.pk]
    assert LocalMailbox.objects.get(pk=account.pk).fetching_until is None

    monkeypatch.setattr(sync, "progress_recorder", real_recorder)
    tasks.fetch_pop3(account.pk)

    assert account.local_messages.count() == 3


def test_headers_longer_than_a_megabyte_leave_their_folder_listable(
    signed_in_client, mail_account, mail_server, mail_user
):
    # The server writes a message's addresses on its one ENVELOPE line.
    cc = ",\r\n ".join(f'"Name {i}" <p{i}@example.org>' for i in range(40_000))
    raw = (
        f"From: a@example.org\r\nTo: b@example.org\r\nCc: {cc}\r\nSubject: Long\r\n\r\nBody.\r\n"
    ).encode()
    mail_server.deliver(mail_user.address, raw)
    mail_server.deliver(mail_user.address, message("Ordinary").as_bytes())

    response = signed_in_client.get(
        reverse("webmail:mailbox", args=[mail_account.pk]) + "?folder=INBOX"
    )

    assert response.status_code == 200
    assert "Ordinary" in response.content.decode()
