"""New mail found in the background, against the suite's real Dovecot.

A check asks the account's server for its counts, records them in the
account's SyncState, and opens and sanitises new Inbox messages ahead of the
person; open pages poll that state, and "Check mail" hands a check (IMAP) or a
fetch (POP3) to a real Celery worker.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Protocol
from tests.integration.celery_worker import wait_for
from tests.support.accounts import make_account, unreachable_account
from webmail import reading, sync, tasks
from webmail.mailstore.imap import ImapStore
from webmail.models import LocalMessage, SyncState

pytestmark = pytest.mark.integration


def html_message(subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoé Martin <zoe@example.org>"
    msg["To"] = "me@example.test"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("Plain words.")
    msg.add_alternative(
        f"<p onclick='steal()'>{subject}</p><script>alert(1)</script>", subtype="html"
    )
    return msg.as_bytes()


def status_url(account, **query) -> str:
    url = reverse("webmail:sync-status", args=[account.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def state(account) -> SyncState:
    return SyncState.objects.get(account=account)


def test_a_check_records_the_counts_and_a_token_that_changes_with_new_mail(
    mail_account, mail_server, mail_user
):
    mail_server.deliver(mail_user.address, html_message("First"))
    first = sync.check(mail_account)
    assert (first.inbox_unread, first.problem) == (1, "")
    assert first.token and first.inbox_uidvalidity and first.checked_at
    assert first.checking_until is None

    assert sync.check(mail_account).token == first.token  # nothing new, nothing to update

    mail_server.deliver(mail_user.address, html_message("Second"))
    second = sync.check(mail_account)
    assert second.token != first.token
    assert second.inbox_unread == 2
    assert second.inbox_uidnext == first.inbox_uidnext + 1


def test_new_inbox_messages_are_sanitised_before_anyone_opens_them(
    mail_account, mail_server, mail_user
):
    sync.check(mail_account)  # what was there before is not new
    mail_server.deliver(mail_user.address, html_message("Ready"))
    checked = sync.check(mail_account)
    uid = checked.inbox_uidnext - 1

    body = reading.cached_body(mail_account, "INBOX", checked.inbox_uidvalidity, uid, False)
    assert body is not None and "Ready" in str(body)
    assert "<script" not in str(body) and "onclick" not in str(body)


def test_the_first_check_prepares_nothing_and_a_later_one_only_the_newest(
    mail_account, mail_server, mail_user, settings
):
    settings.MAIL_PRERENDER_COUNT = 2
    mail_server.deliver(mail_user.address, html_message("Old"))
    first = sync.check(mail_account)
    assert reading.cached_body(mail_account, "INBOX", first.inbox_uidvalidity, 1, False) is None

    for number in range(3):
        mail_server.deliver(mail_user.address, html_message(f"New {number}"))
    checked = sync.check(mail_account)
    prepared = [
        uid
        for uid in range(1, checked.inbox_uidnext)
        if reading.cached_body(mail_account, "INBOX", checked.inbox_uidvalidity, uid, False)
    ]
    assert prepared == [3, 4]


def test_a_message_page_shows_the_prepared_body_without_sanitising_again(
    signed_in_client, mail_account, mail_server, mail_user, monkeypatch
):
    sync.check(mail_account)
    mail_server.deliver(mail_user.address, html_message("Instant"))
    uid = sync.check(mail_account).inbox_uidnext - 1

    def refuse(*args, **kwargs):
        raise AssertionError("sanitised again")

    monkeypatch.setattr("webmail.reading.sanitize_html", refuse)
    url = reverse("webmail:message", args=[mail_account.pk, uid]) + "?folder=INBOX"
    assert signed_in_client.get(url).status_code == 200


def test_two_checks_of_one_account_never_run_at_once(mail_account):
    sync.state_of(mail_account)
    SyncState.objects.filter(account=mail_account).update(
        checking_until=timezone.now() + timedelta(minutes=1)
    )
    with pytest.raises(sync.CheckInProgress):
        sync.check(mail_account)
    # A lease left by a dead worker runs out.
    SyncState.objects.filter(account=mail_account).update(
        checking_until=timezone.now() - timedelta(seconds=1)
    )
    assert sync.check(mail_account).checked_at is not None


def test_an_unreachable_server_is_recorded_for_the_person_not_raised(person):
    account = unreachable_account(person)
    checked = sync.check(account)
    assert checked.problem
    assert checked.checking_until is None


def test_the_status_sends_the_folder_list_again_only_when_something_changed(
    signed_in_client, mail_account, mail_server, mail_user, settings
):
    settings.MAIL_CHECK_SECONDS = 3600  # the view must not queue checks in this test
    sync.request_check_now(mail_account)
    first = sync.check(mail_account)

    same = signed_in_client.get(status_url(mail_account, folder="INBOX", token=first.token))
    assert same.status_code == 200
    assert 'id="sync-status"' in same.content.decode()
    assert "folder-list" not in same.content.decode()

    mail_server.deliver(mail_user.address, html_message("Counted"))
    second = sync.check(mail_account)
    changed = signed_in_client.get(status_url(mail_account, folder="INBOX", token=first.token))
    page = changed.content.decode()
    assert 'id="folder-list"' in page and 'hx-swap-oob="true"' in page
    assert re.search(r'aria-current="page">\s*<span class="folder-name">Inbox</span>', page)
    assert '<span class="badge"' in page and ">1</span>" in page
    assert f'data-token="{second.token}"' in page
    assert 'data-unread="1"' in page
    assert changed["Cache-Control"].startswith("max-age=0")


def test_the_status_of_another_persons_account_is_not_found(
    client, django_user_model, mail_account
):
    stranger = django_user_model.objects.create_user(username="stranger")
    client.force_login(stranger)
    assert client.get(status_url(mail_account)).status_code == 404
    assert client.post(reverse("webmail:check-mail", args=[mail_account.pk])).status_code == 404


def test_an_open_page_asks_for_one_check_however_many_poll(
    signed_in_client, mail_account, monkeypatch
):
    queued = []
    monkeypatch.setattr("webmail.views.sync.queue_check", queued.append)
    for __ in range(3):
        signed_in_client.get(status_url(mail_account))
    assert queued == [mail_account]


def test_the_problem_of_the_last_check_is_shown(signed_in_client, person, settings):
    settings.MAIL_CHECK_SECONDS = 3600
    account = unreachable_account(person)
    sync.check(account)
    # Counts that changed while the server went away: the state comes all the same.
    SyncState.objects.filter(account=account).update(token="changed")
    response = signed_in_client.get(status_url(account, token="before"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "New mail could not be checked" in page
    assert 'role="alert"' in page
    assert "folder-list" not in page


def test_the_background_check_covers_accounts_not_checked_for_a_while(
    mail_account, person, mail_server, mail_user, settings
):
    settings.MAIL_BACKGROUND_CHECK_SECONDS = 300
    pop3 = unreachable_account(person, "pop@example.test", protocol=Protocol.POP3)
    assert sync.due_for_background_check() == [mail_account.pk]  # IMAP accounts only
    sync.state_of(mail_account)
    assert sync.due_for_background_check() == [mail_account.pk]
    assert sync.due_for_background_check() == []  # counted as queued
    SyncState.objects.filter(account=mail_account).update(
        requested_at=None, checked_at=timezone.now()
    )
    assert sync.due_for_background_check() == []
    SyncState.objects.filter(account=mail_account).update(
        checked_at=timezone.now() - timedelta(seconds=301)
    )
    assert sync.due_for_background_check() == [mail_account.pk]
    assert not SyncState.objects.filter(account=pop3).exists()


@pytest.mark.django_db(transaction=True)
def test_check_mail_has_a_real_worker_check_an_imap_account(
    client, person, mail_account, mail_server, mail_user, send_worker
):
    client.force_login(person)
    mail_server.deliver(mail_user.address, html_message("Found"))
    response = client.post(
        reverse("webmail:check-mail", args=[mail_account.pk]),
        {"folder": "INBOX"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "is-checking" in response.content.decode()
    checked = wait_for(
        lambda: SyncState.objects.filter(account=mail_account, inbox_unread=1).first(),
        what="the worker's check",
    )
    assert checked.problem == ""


@pytest.mark.django_db(transaction=True)
def test_check_mail_has_a_real_worker_fetch_a_pop3_account(
    client, person, mail_server, mail_user, send_worker
):
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    for number in range(3):
        mail_server.deliver(mail_user.address, html_message(f"POP {number}"))
    client.force_login(person)
    response = client.post(reverse("webmail:check-mail", args=[account.pk]), {"folder": "INBOX"})
    assert response.status_code == 302
    wait_for(
        lambda: SyncState.objects.filter(account=account, inbox_unread=3).exists(),
        what="the worker's fetch",
    )
    assert LocalMessage.objects.filter(account=account).count() == 3
    done = state(account)
    assert (done.progress_done, done.progress_total, done.problem) == (None, None, "")


def test_a_pop3_fetch_that_fails_says_why_and_one_that_works_clears_it(
    person, mail_server, mail_user
):
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    account.set_password("wrong password")
    account.save()
    tasks.fetch_pop3(account.pk)
    assert state(account).problem

    account.set_password(mail_user.password)
    account.save()
    mail_server.deliver(mail_user.address, html_message("Back"))
    tasks.fetch_pop3(account.pk)
    assert (state(account).problem, state(account).inbox_unread) == ("", 1)


def test_a_fetch_reports_its_progress_as_it_goes(person, mail_server, mail_user, monkeypatch):
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    for number in range(4):
        mail_server.deliver(mail_user.address, html_message(f"Step {number}"))
    seen = []
    recorder = sync.progress_recorder

    def watching(account):
        record = recorder(account)

        def progress(done, total):
            record(done, total)
            row = state(account)
            seen.append((row.progress_done, row.progress_total))

        return progress

    monkeypatch.setattr("webmail.sync.progress_recorder", watching)
    monkeypatch.setattr("webmail.sync.PROGRESS_INTERVAL", 0)
    tasks.fetch_pop3(account.pk)
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert (state(account).progress_done, state(account).progress_total) == (None, None)


def test_imap_store_status_reports_the_inbox(mail_account, mail_server, mail_user):
    mail_server.deliver(mail_user.address, html_message("One"))
    status = ImapStore(mail_account).folder_status("INBOX")
    assert (status.unread, status.total) == (1, 1)
    assert status.uidnext == 2 and status.uidvalidity


def test_a_pop3_account_delivering_elsewhere_opens_on_that_folder_and_is_checked_with_it(
    signed_in_client, person, mail_account, monkeypatch
):
    source = unreachable_account(
        person,
        "pop@example.test",
        protocol=Protocol.POP3,
        pop3_deliver_to=mail_account,
        pop3_deliver_folder="Fetched",
    )
    response = signed_in_client.get(reverse("webmail:mailbox", args=[source.pk]))
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("webmail:mailbox", args=[mail_account.pk]) + "?folder=Fetched"
    )

    sync.fetch_ended(source, "The server refused the login or password.")
    page = signed_in_client.get(status_url(mail_account)).content.decode()
    assert "Mail of pop@example.test could not be fetched" in page

    queued = []
    monkeypatch.setattr("webmail.views.sync.queue_check", lambda a: queued.append(a) or True)
    signed_in_client.post(reverse("webmail:check-mail", args=[mail_account.pk]))
    assert queued == [mail_account, source]


def test_check_mail_says_so_when_no_worker_can_be_reached(
    signed_in_client, mail_account, monkeypatch
):
    monkeypatch.setattr("webmail.views.sync.queue_check", lambda account: False)
    response = signed_in_client.post(
        reverse("webmail:check-mail", args=[mail_account.pk]),
        {"folder": "INBOX"},
        headers={"HX-Request": "true"},
    )
    assert "background service is unavailable" in response.content.decode()
    followed = signed_in_client.post(
        reverse("webmail:check-mail", args=[mail_account.pk]), {"folder": "INBOX"}, follow=True
    )
    assert "background service is unavailable" in followed.content.decode()
