"""The administrator's screens: write-only passwords, presets, "Test connection"."""

import socket
import threading

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import constants
from django.test import Client
from django.urls import reverse

from accounts import crypto
from accounts.models import MailAccount, Protocol, Security, ServerPreset
from accounts.throttle import SignInThrottle
from tests.support.accounts import make_account

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

User = get_user_model()
ADD_URL = reverse("admin:accounts_mailaccount_add")
CHANGELIST_URL = reverse("admin:accounts_mailaccount_changelist")


@pytest.fixture
def preset(db) -> ServerPreset:
    return ServerPreset.objects.create(
        name="office",
        domain="example.org",
        imap_host="imap.example.org",
        imap_port=993,
        imap_security=Security.TLS,
        pop3_host="pop.example.org",
        pop3_port=995,
        pop3_security=Security.TLS,
        smtp_host="smtp.example.org",
        smtp_port=587,
        smtp_security=Security.STARTTLS,
        accept_untrusted=True,
    )


@pytest.fixture
def owner(db):
    return User.objects.create_user("bob", email="bob@example.org", password="Sign-in-pass-1")


def account_form(**values) -> dict:
    """What the add form posts when only the given fields are filled in."""
    data = {
        "position": "0",
        "email": "",
        "display_name": "",
        "preset": "",
        "protocol": Protocol.IMAP,
        "login": "",
        "password": "",
        "incoming_host": "",
        "incoming_port": "",
        "incoming_security": Security.TLS,
        "smtp_host": "",
        "smtp_port": "",
        "smtp_security": Security.STARTTLS,
        "smtp_login": "",
        "smtp_password": "",
        "ca_file": "",
    }
    data.update(values)
    return data


def messages_of(response) -> list[tuple[int, str]]:
    return [(message.level, message.message) for message in response.context["messages"]]


@pytest.mark.parametrize(
    "url",
    [
        ADD_URL,
        CHANGELIST_URL,
        reverse("admin:accounts_serverpreset_add"),
        reverse("admin:accounts_serverpreset_changelist"),
        reverse("admin:auth_user_add"),
        reverse("admin:auth_user_changelist"),
    ],
)
def test_admin_pages_render(admin_client, account, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    assert account.password_encrypted not in response.content.decode()


def test_an_address_a_password_and_a_preset_are_enough(admin_client, owner, preset):
    response = admin_client.post(
        ADD_URL,
        account_form(
            user=owner.pk, email="bob@example.org", password="Mail-pass-1", preset=preset.pk
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    account = MailAccount.objects.get()
    assert account.login == "bob@example.org"
    assert (account.incoming_host, account.incoming_port) == ("imap.example.org", 993)
    assert (account.smtp_host, account.smtp_port) == ("smtp.example.org", 587)
    assert account.accept_untrusted
    assert account.incoming_endpoint().password == "Mail-pass-1"
    assert account.smtp_password_encrypted == ""


def test_a_pop3_account_gets_the_presets_pop3_server(admin_client, owner, preset):
    admin_client.post(
        ADD_URL,
        account_form(
            user=owner.pk,
            email="bob@example.org",
            password="Mail-pass-1",
            preset=preset.pk,
            protocol=Protocol.POP3,
        ),
    )
    account = MailAccount.objects.get()
    assert (account.incoming_host, account.incoming_port) == ("pop.example.org", 995)


def test_servers_given_by_hand_win_over_the_preset(admin_client, owner, preset):
    admin_client.post(
        ADD_URL,
        account_form(
            user=owner.pk,
            email="bob@example.org",
            login="bob",
            password="Mail-pass-1",
            preset=preset.pk,
            incoming_host="::1",
            incoming_port="1143",
            incoming_security=Security.STARTTLS,
            smtp_host="localhost",
            smtp_port="1587",
        ),
    )
    account = MailAccount.objects.get()
    assert (account.incoming_host, account.incoming_port, account.login) == ("::1", 1143, "bob")
    assert (account.smtp_host, account.accept_untrusted) == ("localhost", False)


def test_without_a_preset_the_servers_are_needed(admin_client, owner):
    response = admin_client.post(
        ADD_URL, account_form(user=owner.pk, email="bob@example.org", password="Mail-pass-1")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["incoming_host"] == ["Choose a preset or fill this in."]
    assert set(errors) == {"incoming_host", "incoming_port", "smtp_host", "smtp_port"}
    assert not MailAccount.objects.exists()


def test_a_new_account_needs_a_password(admin_client, owner, preset):
    response = admin_client.post(
        ADD_URL, account_form(user=owner.pk, email="bob@example.org", preset=preset.pk)
    )
    assert response.status_code == 200
    assert "password" in response.context["adminform"].form.errors


def test_host_and_ca_file_are_checked(admin_client, owner, tmp_path):
    response = admin_client.post(
        ADD_URL,
        account_form(
            user=owner.pk,
            email="bob@example.org",
            password="Mail-pass-1",
            incoming_host="imap server",
            incoming_port="993",
            smtp_host="smtp.example.org",
            smtp_port="587",
            ca_file=str(tmp_path / "missing.pem"),
        ),
    )
    errors = response.context["adminform"].form.errors
    assert errors["incoming_host"] == ["“imap server” is not a host name or an IP address."]
    assert "There is no file" in errors["ca_file"][0]


@pytest.fixture
def account(owner, preset) -> MailAccount:
    account = MailAccount(user=owner, email="bob@example.org", login="bob@example.org")
    account.apply_preset(preset)
    account.set_password("Mail-pass-1")
    account.save()
    return account


def change_url(account: MailAccount) -> str:
    return reverse("admin:accounts_mailaccount_change", args=[account.pk])


def current_form(admin_client, account: MailAccount, **changes) -> dict:
    response = admin_client.get(change_url(account))
    form = response.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if name != "accept_untrusted"}
    if form["accept_untrusted"].value():
        data["accept_untrusted"] = "on"
    data = {name: "" if value is None else value for name, value in data.items()}
    data.update(changes)
    return {name: value for name, value in data.items() if value is not False}


def test_passwords_are_never_shown(admin_client, account):
    account.set_smtp_password("Smtp-pass-2")
    account.save()
    content = admin_client.get(change_url(account)).content.decode()
    for secret in (
        "Mail-pass-1",
        "Smtp-pass-2",
        account.password_encrypted,
        account.smtp_password_encrypted,
    ):
        assert secret not in content
    assert 'name="password"' in content
    assert "Leave empty to keep the current password." in content


def test_an_empty_password_keeps_the_current_one(admin_client, account):
    token = account.password_encrypted
    response = admin_client.post(change_url(account), current_form(admin_client, account))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.password_encrypted == token


def test_passwords_can_be_changed_and_the_smtp_one_cleared(admin_client, account):
    admin_client.post(
        change_url(account),
        current_form(admin_client, account, password="Mail-pass-9", smtp_password="Smtp-pass-9"),
    )
    account.refresh_from_db()
    assert account.incoming_endpoint().password == "Mail-pass-9"
    assert account.smtp_endpoint().password == "Smtp-pass-9"

    # The incoming password then goes to the sending server too: it is typed again.
    admin_client.post(
        change_url(account),
        current_form(admin_client, account, clear_smtp_password="on", password="Mail-pass-9"),
    )
    account.refresh_from_db()
    assert account.smtp_password_encrypted == ""
    assert account.smtp_endpoint().password == "Mail-pass-9"


def test_deletion_from_the_pop3_server_is_set_in_the_account_page(admin_client, account):
    admin_client.post(
        change_url(account), current_form(admin_client, account, pop3_delete_after_days="30")
    )
    account.refresh_from_db()
    assert account.pop3_delete_after_days == 30


def test_person_page_has_the_accounts_inline(admin_client, account):
    response = admin_client.get(reverse("admin:auth_user_change", args=[account.user.pk]))
    content = response.content.decode()
    assert 'name="mail_accounts-TOTAL_FORMS"' in content
    assert 'value="bob@example.org"' in content
    assert account.password_encrypted not in content


def test_person_and_account_created_from_the_person_page(admin_client, owner, preset):
    data = {
        "username": "bob",
        "email": "bob@example.org",
        "is_active": "on",
        "date_joined_0": "2025-01-06",
        "date_joined_1": "09:00:00",
        "mail_accounts-TOTAL_FORMS": "1",
        "mail_accounts-INITIAL_FORMS": "0",
        "mail_accounts-MIN_NUM_FORMS": "0",
        "mail_accounts-MAX_NUM_FORMS": "1000",
    }
    inline = account_form(email="bob@example.org", password="Mail-pass-1", preset=preset.pk)
    data.update({f"mail_accounts-0-{name}": value for name, value in inline.items()})
    response = admin_client.post(reverse("admin:auth_user_change", args=[owner.pk]), data)
    assert response.status_code == 302
    account = owner.mail_accounts.get()
    assert (account.incoming_host, account.login) == ("imap.example.org", "bob@example.org")
    assert crypto.decrypt(account.password_encrypted) == "Mail-pass-1"


def test_preset_admin_needs_an_incoming_server(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_serverpreset_add"),
        {
            "name": "office",
            "domain": "Example.ORG",
            "imap_security": "tls",
            "pop3_security": "tls",
            "smtp_host": "smtp.example.org",
            "smtp_port": "587",
            "smtp_security": "starttls",
            "ca_file": "",
        },
    )
    assert response.status_code == 200
    assert "a preset needs an incoming server" in response.content.decode()


def test_preset_admin_shows_the_tls_warning(admin_client, preset):
    response = admin_client.get(reverse("admin:accounts_serverpreset_change", args=[preset.pk]))
    assert "anyone on the network path can then pose as the server" in response.content.decode()


def test_staff_without_permissions_sees_no_accounts(client, account):
    staff = User.objects.create_user("clerk", password="Sign-in-pass-2", is_staff=True)
    client.force_login(staff)
    assert client.get(CHANGELIST_URL).status_code == 403
    assert client.get(change_url(account)).status_code == 403


def test_admin_sign_in_success_clears_the_username_counter(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    User.objects.create_superuser("root", "root@example.org", "Sign-in-pass-3")
    client.post(reverse("admin:login"), {"username": "root", "password": "wrong"})
    client.post(reverse("admin:login"), {"username": "root", "password": "Sign-in-pass-3"})
    assert not SignInThrottle("root", "127.0.0.1").is_locked()


# -- Test connection, against the suite's real mail server ----------------------


@pytest.fixture
def live_account(owner, mail_server, mail_user) -> MailAccount:
    return make_account(owner, mail_server, mail_user)


def run_test_connection(admin_client, accounts: list[MailAccount]) -> list[tuple[int, str]]:
    response = admin_client.post(
        CHANGELIST_URL,
        {"action": "test_connection", "_selected_action": [account.pk for account in accounts]},
        follow=True,
    )
    assert response.status_code == 200
    return messages_of(response)


def test_connection_succeeds(admin_client, live_account):
    [(level, message)] = run_test_connection(admin_client, [live_account])
    assert level == constants.SUCCESS
    address = live_account.email
    assert message == (
        f"{address} — IMAP: Signed in to {live_account.incoming_host} as {address}. "
        f"SMTP: Signed in to {live_account.smtp_host} as {address}."
    )


def test_connection_over_pop3(admin_client, live_account, mail_server):
    live_account.protocol = Protocol.POP3
    live_account.incoming_port = mail_server.pop3_port
    live_account.save()
    [(level, message)] = run_test_connection(admin_client, [live_account])
    assert level == constants.SUCCESS
    assert message.startswith(f"{live_account.email} — POP3: Signed in")


def test_connection_with_a_wrong_password(admin_client, live_account):
    live_account.set_password("not-the-password")
    live_account.save()
    [(level, message)] = run_test_connection(admin_client, [live_account])
    assert level == constants.ERROR
    assert message.count("The server refused the login or password") == 2


def test_connection_to_a_closed_port(admin_client, live_account):
    with socket.socket() as probe:
        probe.bind((live_account.incoming_host, 0))
        closed_port = probe.getsockname()[1]
    live_account.incoming_port = closed_port
    live_account.save()
    [(level, message)] = run_test_connection(admin_client, [live_account])
    assert level == constants.ERROR
    assert f"IMAP: {live_account.incoming_host} refused the connection on port {closed_port}." in (
        message
    )
    assert "SMTP: Signed in" in message


def test_connection_with_an_untrusted_certificate(admin_client, live_account, settings):
    settings.MAIL_CA_FILE = None
    live_account.ca_file = ""
    live_account.save()
    [(level, message)] = run_test_connection(admin_client, [live_account])
    assert level == constants.ERROR
    assert message.count("The server's certificate is not trusted") == 2


def test_connection_reports_each_account(admin_client, live_account, owner, mail_server):
    broken = MailAccount.objects.create(
        user=owner,
        email="other@example.org",
        login="other@example.org",
        incoming_host=mail_server.host,
        incoming_port=mail_server.imap_port,
        incoming_security=Security.STARTTLS,
        smtp_host=mail_server.host,
        smtp_port=mail_server.submission_port,
        password_encrypted="not a token",
    )
    results = dict(
        (message.partition(" — ")[0], level)
        for level, message in run_test_connection(admin_client, [live_account, broken])
    )
    assert results == {live_account.email: constants.SUCCESS, broken.email: constants.ERROR}


def test_admin_actions_need_the_csrf_token(admin_user, account):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(
        CHANGELIST_URL, {"action": "test_connection", "_selected_action": [account.pk]}
    )
    assert response.status_code == 403


def test_admin_pages_cannot_be_framed(admin_client, account):
    response = admin_client.get(reverse("admin:accounts_mailaccount_change", args=[account.pk]))
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


# -- A stored password goes only where it went when it was typed ----------------


class CapturingServer:
    """A plain TCP server that greets like IMAP and keeps every line it is sent."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.lines: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"* OK ready\r\n")
                reader = conn.makefile("rb")
                for line in reader:
                    self.lines.append(line)
                    tag, _space, command = line.partition(b" ")
                    if command.upper().startswith(b"CAPABILITY"):
                        conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
                    else:
                        conn.sendall(tag + b" NO go away\r\n")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def capturing_server():
    server = CapturingServer()
    yield server
    server.close()


@pytest.mark.parametrize(
    "changes",
    [
        {"incoming_port": "{port}", "incoming_security": Security.NONE},
        {"incoming_host": "localhost"},
        {"incoming_security": Security.NONE},
        {"smtp_host": "localhost"},
        {"smtp_port": "2525"},
        {"smtp_security": Security.NONE},
        {"accept_untrusted": "on"},
        {"protocol": Protocol.POP3},
    ],
)
def test_changing_where_the_password_goes_needs_it_again(
    admin_client, live_account, capturing_server, changes
):
    before = MailAccount.objects.values().get(pk=live_account.pk)
    changes = {k: v.format(port=capturing_server.port) for k, v in changes.items()}
    response = admin_client.post(
        change_url(live_account), current_form(admin_client, live_account, **changes)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "type the password again" in errors["password"][0]
    assert MailAccount.objects.values().get(pk=live_account.pk) == before
    # Test connection still goes where the password was typed for, nowhere else.
    run_test_connection(admin_client, [live_account])
    assert capturing_server.connections == 0


def test_with_the_password_typed_again_the_new_server_is_saved(
    admin_client, live_account, capturing_server
):
    form = current_form(
        admin_client,
        live_account,
        incoming_host="127.0.0.1",
        incoming_port=str(capturing_server.port),
        incoming_security=Security.NONE,
        password="Typed-for-this-server",
    )
    assert admin_client.post(change_url(live_account), form).status_code == 302
    live_account.refresh_from_db()
    assert live_account.incoming_port == capturing_server.port
    level, _message = run_test_connection(admin_client, [live_account])[-1]
    assert level == constants.ERROR
    # What reached the new server is the password typed for it, not the old one.
    sent = b"".join(capturing_server.lines)
    assert b"Typed-for-this-server" in sent
    assert live_account.login.encode() in sent


def test_a_separate_smtp_password_is_needed_for_a_new_smtp_server(admin_client, live_account):
    live_account.set_smtp_password("Smtp-pass-2")
    live_account.save()
    form = current_form(admin_client, live_account, smtp_host="localhost", password="Mail-pass-9")
    response = admin_client.post(change_url(live_account), form)
    assert (
        "type the password again" in response.context["adminform"].form.errors["smtp_password"][0]
    )
    form["smtp_password"] = "Smtp-pass-9"
    assert admin_client.post(change_url(live_account), form).status_code == 302


def test_forgetting_the_smtp_password_needs_the_incoming_one(admin_client, live_account):
    live_account.set_smtp_password("Smtp-pass-2")
    live_account.save()
    form = current_form(admin_client, live_account, clear_smtp_password="on")
    response = admin_client.post(change_url(live_account), form)
    assert "type the password again" in response.context["adminform"].form.errors["password"][0]
    live_account.refresh_from_db()
    assert live_account.smtp_endpoint().password == "Smtp-pass-2"


def test_the_person_page_inline_asks_for_the_password_too(admin_client, live_account):
    owner = live_account.user
    response = admin_client.get(reverse("admin:auth_user_change", args=[owner.pk]))
    data = {}
    for form in [
        response.context["adminform"].form,
        *response.context["inline_admin_formsets"][0].formset.forms,
    ]:
        for name in form.fields:
            value = form[name].value()
            if value in (None, False):
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    formset = response.context["inline_admin_formsets"][0].formset
    data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
    data[f"{formset.prefix}-0-incoming_host"] = "localhost"
    data.pop("password", None)
    response = admin_client.post(reverse("admin:auth_user_change", args=[owner.pk]), data)
    assert response.status_code == 200
    live_account.refresh_from_db()
    assert live_account.incoming_host != "localhost"
