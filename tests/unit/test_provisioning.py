"""Provisioning presets and people from the command line: idempotent, all or nothing."""

import datetime
import io
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts import crypto
from accounts.models import MailAccount, Protocol, Security, ServerPreset
from accounts.provisioning import (
    Outcome,
    ProvisioningError,
    add_preset,
    import_people,
    parse_host_port,
)

User = get_user_model()
HEADER = "username,email,password,mail_login,mail_password,preset\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mail.example.org:993", ("mail.example.org", 993)),
        ("localhost:1143", ("localhost", 1143)),
        ("192.0.2.7:25", ("192.0.2.7", 25)),
        ("[::1]:993", ("::1", 993)),
        ("[2001:db8::25]:587", ("2001:db8::25", 587)),
        (" mail.example.org:587 ", ("mail.example.org", 587)),
    ],
)
def test_parse_host_port(value, expected):
    assert parse_host_port(value) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("mail.example.org", "missing_port"),
        (":993", "missing_port"),
        ("::1:993", "invalid_address"),
        ("[::1]993", "invalid_address"),
        ("[::1", "invalid_address"),
        ("[mail.example.org]:993", "invalid_address"),
        ("mail.example.org:0", "invalid_port"),
        ("mail.example.org:65536", "invalid_port"),
        ("mail.example.org:imaps", "invalid_port"),
        ("mail.example.org:٩٩٣", "invalid_port"),
        ("mail_server!:993", "invalid_host"),
        ("-mail.example.org:993", "invalid_host"),
    ],
)
def test_parse_host_port_refuses(value, code):
    with pytest.raises(ValidationError) as excinfo:
        parse_host_port(value)
    assert excinfo.value.code == code


@pytest.fixture
def ca_file(tmp_path: Path) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


PRESET = {
    "domain": "example.org",
    "imap": "imap.example.org:993",
    "imap_security": "tls",
    "smtp": "smtp.example.org:587",
    "smtp_security": "starttls",
}


def preset_row(name: str) -> dict:
    return ServerPreset.objects.filter(name=name).values().get()


@pytest.mark.django_db
def test_add_preset_creates_then_changes_nothing(ca_file):
    preset, outcome = add_preset("office", **PRESET, ca_file=ca_file)
    assert outcome == Outcome.CREATED
    assert (preset.imap_host, preset.imap_port, preset.imap_security) == (
        "imap.example.org",
        993,
        Security.TLS,
    )
    assert (preset.smtp_host, preset.smtp_port, preset.smtp_security) == (
        "smtp.example.org",
        587,
        Security.STARTTLS,
    )
    assert (preset.pop3_host, preset.pop3_port) == ("", None)
    assert preset.ca_file == ca_file
    before = preset_row("office")

    assert add_preset("office", **PRESET, ca_file=ca_file)[1] == Outcome.UNCHANGED
    assert preset_row("office") == before
    assert ServerPreset.objects.count() == 1


@pytest.mark.django_db
def test_add_preset_updates_to_exactly_what_is_given(ca_file):
    add_preset("office", **PRESET, ca_file=ca_file, pop3="pop.example.org:995", pop3_security="tls")
    preset, outcome = add_preset(
        "office", **{**PRESET, "smtp": "[2001:db8::25]:465", "smtp_security": "tls"}
    )
    assert outcome == Outcome.UPDATED
    assert (preset.smtp_host, preset.smtp_port, preset.smtp_security) == (
        "2001:db8::25",
        465,
        "tls",
    )
    # Options left out are cleared: the command describes the whole preset.
    assert (preset.pop3_host, preset.pop3_port, preset.ca_file) == ("", None, "")
    assert preset_row("office")["smtp_host"] == "2001:db8::25"


@pytest.mark.django_db
def test_add_preset_reports_every_error_and_writes_nothing(tmp_path):
    with pytest.raises(ProvisioningError) as excinfo:
        add_preset(
            "office",
            domain="example.org",
            imap="imap.example.org",
            imap_security="tls",
            smtp="::1:25",
            smtp_security="starttls",
            ca_file=str(tmp_path / "missing.pem"),
        )
    errors = excinfo.value.errors
    assert [error.split(":")[0] for error in errors] == ["--imap", "--smtp", "--ca-file"]
    assert "has no port" in errors[0]
    assert "[ADDRESS]:PORT" in errors[1]
    assert "missing.pem" in errors[2]
    assert not ServerPreset.objects.exists()


@pytest.mark.django_db
def test_add_preset_refuses_a_file_that_is_not_pem(tmp_path):
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ProvisioningError, match=r"--ca-file: .*PEM"):
        add_preset("office", **PRESET, ca_file=str(bogus))


@pytest.mark.django_db
def test_add_preset_needs_a_security_with_each_server():
    with pytest.raises(ProvisioningError, match="--imap-security"):
        add_preset("office", **{**PRESET, "imap_security": ""})


@pytest.mark.django_db
def test_add_preset_needs_an_incoming_server():
    with pytest.raises(ProvisioningError, match="--imap or --pop3"):
        add_preset("office", **{**PRESET, "imap": ""})


@pytest.mark.django_db
def test_add_preset_refuses_a_domain_served_by_another_preset():
    add_preset("office", **PRESET)
    with pytest.raises(ProvisioningError, match=re.escape("“office” already serves example.org")):
        add_preset("other", **{**PRESET, "domain": "Example.ORG"})


@pytest.mark.django_db
def test_add_preset_refuses_ca_file_with_insecure(ca_file):
    with pytest.raises(ProvisioningError, match="choose one"):
        add_preset("office", **PRESET, ca_file=ca_file, accept_untrusted=True)


@pytest.mark.django_db
def test_add_preset_command():
    argv = [
        "office",
        "--domain=example.org",
        "--imap=[::1]:1993",
        "--imap-security=tls",
        "--smtp=localhost:1587",
        "--smtp-security=starttls",
        "--insecure",
    ]
    out = io.StringIO()
    call_command("add_preset", *argv, stdout=out)
    call_command("add_preset", *argv, stdout=out)
    assert out.getvalue().splitlines() == [
        "Preset “office”: created.",
        "Preset “office”: unchanged.",
    ]
    preset = ServerPreset.objects.get()
    assert (preset.imap_host, preset.accept_untrusted) == ("::1", True)
    with pytest.raises(CommandError, match=r"--smtp: .*no port"):
        call_command("add_preset", *argv[:-3], "--smtp=localhost", "--smtp-security=tls")


# -- import_people ----------------------------------------------------------


@pytest.fixture
def presets(db) -> None:
    add_preset("office", **PRESET)
    add_preset(
        "partner",
        domain="partner.example",
        pop3="pop.partner.example:995",
        pop3_security="tls",
        imap="imap.partner.example:143",
        imap_security="starttls",
        smtp="smtp.partner.example:465",
        smtp_security="tls",
    )


def write_csv(tmp_path: Path, *lines: str, name: str = "people.csv", newline="\n") -> Path:
    path = tmp_path / name
    path.write_bytes((HEADER + "".join(lines)).replace("\n", newline).encode())
    return path


PEOPLE = (
    "alice,alice@example.org,Sign-in-pass-1,,Mail-pass-1,\n",
    "bob,bob@partner.example,Sign-in-pass-2,bob.partner,Mail-pass-2,partner\n",
)


def snapshot() -> tuple[list[dict], list[dict]]:
    users = list(User.objects.order_by("pk").values())
    accounts = list(MailAccount.objects.order_by("pk").values())
    return users, accounts


@pytest.mark.usefixtures("presets")
def test_import_people_creates_people_and_accounts(tmp_path):
    report = import_people(write_csv(tmp_path, *PEOPLE))
    assert report.people == {Outcome.CREATED: 2}
    assert report.accounts == {Outcome.CREATED: 2}

    alice = User.objects.get(username="alice")
    assert alice.email == "alice@example.org"
    assert alice.check_password("Sign-in-pass-1")
    account = alice.mail_accounts.get()
    # An empty mail_login means the address; an empty preset, the one of the domain.
    assert account.login == "alice@example.org"
    assert account.preset.name == "office"
    assert (account.protocol, account.incoming_host, account.incoming_port) == (
        Protocol.IMAP,
        "imap.example.org",
        993,
    )
    assert (account.smtp_host, account.smtp_port) == ("smtp.example.org", 587)
    assert account.incoming_endpoint().password == "Mail-pass-1"

    bob = User.objects.get(username="bob").mail_accounts.get()
    assert bob.login == "bob.partner"
    assert (bob.incoming_host, bob.incoming_security) == ("imap.partner.example", "starttls")
    assert (bob.smtp_host, bob.smtp_port, bob.smtp_security) == ("smtp.partner.example", 465, "tls")
    assert "Mail-pass-2" not in bob.password_encrypted


@pytest.mark.usefixtures("presets")
def test_second_import_changes_nothing(tmp_path):
    path = write_csv(tmp_path, *PEOPLE)
    import_people(path)
    before = snapshot()
    report = import_people(path)
    assert report.people == {Outcome.UNCHANGED: 2}
    assert report.accounts == {Outcome.UNCHANGED: 2}
    # Password hashes and encrypted tokens included: nothing was re-hashed or re-encrypted.
    assert snapshot() == before


@pytest.mark.usefixtures("presets")
def test_import_updates_only_what_changed(tmp_path):
    import_people(write_csv(tmp_path, *PEOPLE))
    (users_before, accounts_before) = snapshot()
    report = import_people(
        write_csv(
            tmp_path,
            PEOPLE[0].replace("Mail-pass-1", "Mail-pass-new"),
            PEOPLE[1].replace("Sign-in-pass-2", ""),
        )
    )
    assert report.people == {Outcome.UNCHANGED: 2}
    assert report.accounts == {Outcome.UPDATED: 1, Outcome.UNCHANGED: 1}
    users_after, accounts_after = snapshot()
    assert users_after == users_before
    assert accounts_after[1] == accounts_before[1]
    changed = MailAccount.objects.get(email="alice@example.org")
    assert changed.incoming_endpoint().password == "Mail-pass-new"


@pytest.mark.usefixtures("presets")
def test_import_changes_a_sign_in_password(tmp_path):
    import_people(write_csv(tmp_path, *PEOPLE))
    report = import_people(write_csv(tmp_path, PEOPLE[0].replace("Sign-in-pass-1", "Other-pass-9")))
    assert report.people == {Outcome.UPDATED: 1}
    assert User.objects.get(username="alice").check_password("Other-pass-9")


@pytest.mark.usefixtures("presets")
def test_error_on_line_3_writes_nothing_and_names_line_and_column(tmp_path):
    path = write_csv(
        tmp_path,
        PEOPLE[0],
        "carol,carol@example.org,Sign-in-pass-3,,Mail-pass-3,acme\n",
    )
    with pytest.raises(ProvisioningError) as excinfo:
        import_people(path)
    assert excinfo.value.errors == [f'{path}:3: column "preset": no preset named “acme”.']
    assert not User.objects.exists()
    assert not MailAccount.objects.exists()


@pytest.mark.usefixtures("presets")
def test_every_error_is_reported(tmp_path):
    path = write_csv(
        tmp_path,
        "alice,not-an-address,Sign-in-pass-1,,Mail-pass-1,\n",
        "bob,bob@nowhere.example,Sign-in-pass-2,,Mail-pass-2,\n",
        "carol,carol@example.org,,,,\n",
        "alice,alice2@example.org,Sign-in-pass-4,,Mail-pass-4,office\n",
        "dave,dave@example.org,123,,Mail-pass-5,office\n",
        "erin,erin@example.org,Sign-in-pass-6,,Mail-pass-6\n",
    )
    with pytest.raises(ProvisioningError) as excinfo:
        import_people(path)
    errors = [error.removeprefix(f"{path}:") for error in excinfo.value.errors]
    assert errors[0] == '2: column "email": not a valid address.'
    assert (
        errors[1] == '3: column "preset": empty, and no preset serves the domain nowhere.example.'
    )
    assert errors[2:4] == [
        '4: column "mail_password": required for a new mail account.',
        '4: column "password": required for a new person.',
    ]
    assert (
        errors[4]
        == '5: column "username": “alice” is already on line 2; write one line per person.'
    )
    assert errors[5].startswith('6: column "password": This password is too short.')
    assert errors[6] == "7: expected 6 fields, found 5."
    assert len(errors) == 7
    assert not User.objects.exists()


@pytest.mark.usefixtures("presets")
def test_an_address_must_identify_one_person(tmp_path):
    User.objects.create_user("someone", email="Alice@example.org")
    with pytest.raises(ProvisioningError, match="already the address of “someone”"):
        import_people(write_csv(tmp_path, PEOPLE[0]))


@pytest.mark.usefixtures("presets")
def test_a_pop3_account_needs_a_preset_with_a_pop3_server(tmp_path):
    import_people(write_csv(tmp_path, PEOPLE[0]))
    MailAccount.objects.update(protocol=Protocol.POP3)
    with pytest.raises(ProvisioningError, match="the preset “office” has no POP3 server"):
        import_people(write_csv(tmp_path, PEOPLE[0]))


@pytest.mark.usefixtures("presets")
def test_bom_crlf_utf8_and_column_order(tmp_path):
    path = tmp_path / "people.csv"
    content = (
        "\ufeffpreset,mail_password,mail_login,password,email,username\r\n"
        "\r\n"
        ',"Mail, pass ""é""",,Sign-in-pass-é,zoe@example.org,zoé\r\n'
    )
    path.write_bytes(content.encode("utf-8"))
    import_people(path)
    account = MailAccount.objects.get(user__username="zoé")
    assert account.email == "zoe@example.org"
    assert account.incoming_endpoint().password == 'Mail, pass "é"'
    assert User.objects.get(username="zoé").check_password("Sign-in-pass-é")


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(HEADER.encode() + b"alice,alice@example.org,p\xe9,,x,\n")
    with pytest.raises(ProvisioningError, match=re.escape("people.csv:2: not UTF-8")):
        import_people(path)


@pytest.mark.django_db
def test_wrong_header(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("username,email,password\nalice,alice@example.org,x\n")
    with pytest.raises(ProvisioningError, match=re.escape("people.csv:1: the header must name")):
        import_people(path)


@pytest.mark.usefixtures("presets")
def test_import_people_command(tmp_path):
    path = write_csv(tmp_path, *PEOPLE)
    out = io.StringIO()
    call_command("import_people", str(path), stdout=out)
    call_command("import_people", str(path), stdout=out)
    first, second = out.getvalue().splitlines()
    assert first.startswith("People: 2 created, 0 updated, 0 unchanged.")
    assert second.endswith("Mail accounts: 0 created, 0 updated, 2 unchanged.")

    bad = write_csv(tmp_path, PEOPLE[0].replace("alice@example.org", "alice@"), name="bad.csv")
    with pytest.raises(CommandError) as excinfo:
        call_command("import_people", str(bad))
    message = str(excinfo.value)
    assert message.startswith("Nothing was imported")
    assert f'{bad}:2: column "email": not a valid address.' in message


def test_import_people_command_missing_file(tmp_path):
    with pytest.raises(CommandError, match=re.escape("missing.csv: No such file")):
        call_command("import_people", str(tmp_path / "missing.csv"))


@pytest.mark.usefixtures("presets")
def test_stored_mail_password_that_no_key_decrypts_is_replaced(tmp_path):
    import_people(write_csv(tmp_path, PEOPLE[0]))
    MailAccount.objects.update(password_encrypted="garbage")
    report = import_people(write_csv(tmp_path, PEOPLE[0]))
    assert report.accounts == {Outcome.UPDATED: 1}
    token = MailAccount.objects.get().password_encrypted
    assert crypto.decrypt(token) == "Mail-pass-1"


# -- import_people: protocol and POP3 options -------------------------------

POP3_HEADER = (
    "username,email,password,mail_login,mail_password,preset,protocol,pop3_delete_after_days\n"
)


def write_pop3_csv(tmp_path: Path, *lines: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(POP3_HEADER + "".join(lines), encoding="utf-8")
    return path


@pytest.mark.usefixtures("presets")
def test_import_makes_pop3_accounts_with_their_options(tmp_path):
    path = write_pop3_csv(
        tmp_path,
        "alice,alice@example.org,Sign-in-pass-1,,Mail-pass-1,,imap,\n",
        "bob,bob@partner.example,Sign-in-pass-2,,Mail-pass-2,partner,POP3,30\n",
    )

    report = import_people(path)

    assert report.accounts == {Outcome.CREATED: 2}
    alice = MailAccount.objects.get(email="alice@example.org")
    assert (alice.protocol, alice.pop3_delete_after_days) == (Protocol.IMAP, None)
    bob = MailAccount.objects.get(email="bob@partner.example")
    assert (bob.protocol, bob.incoming_host, bob.incoming_port, bob.incoming_security) == (
        Protocol.POP3,
        "pop.partner.example",
        995,
        Security.TLS,
    )
    assert bob.pop3_delete_after_days == 30

    before = snapshot()
    assert import_people(path).accounts == {Outcome.UNCHANGED: 2}
    assert snapshot() == before


@pytest.mark.usefixtures("presets")
def test_a_new_account_is_pop3_when_its_preset_has_only_a_pop3_server(tmp_path):
    add_preset(
        "pop-only",
        domain="pop.example",
        pop3="pop.pop.example:995",
        pop3_security="tls",
        smtp="smtp.pop.example:587",
        smtp_security="starttls",
    )
    import_people(write_csv(tmp_path, "carol,carol@pop.example,Sign-in-pass-3,,Mail-pass-3,\n"))

    account = MailAccount.objects.get(email="carol@pop.example")
    assert (account.protocol, account.incoming_host) == (Protocol.POP3, "pop.pop.example")


@pytest.mark.usefixtures("presets")
def test_deletion_days_change_only_when_the_column_is_there(tmp_path):
    bob = "bob,bob@partner.example,Sign-in-pass-2,,Mail-pass-2,partner,pop3,"
    import_people(write_pop3_csv(tmp_path, bob + "7\n"))
    account = MailAccount.objects.get(email="bob@partner.example")

    # Without the columns, the account keeps its protocol and its days.
    report = import_people(write_csv(tmp_path, PEOPLE[1].replace("bob.partner", "")))
    assert report.accounts == {Outcome.UNCHANGED: 1}
    account.refresh_from_db()
    assert (account.protocol, account.pop3_delete_after_days) == (Protocol.POP3, 7)

    # With them, empty means: leave mail on the server.
    assert import_people(write_pop3_csv(tmp_path, bob + "\n")).accounts == {Outcome.UPDATED: 1}
    account.refresh_from_db()
    assert account.pop3_delete_after_days is None


@pytest.mark.usefixtures("presets")
def test_protocol_and_days_are_checked_with_line_and_column(tmp_path):
    import_people(write_csv(tmp_path, PEOPLE[0]))
    path = write_pop3_csv(
        tmp_path,
        "alice,alice@example.org,,,,,pop3,\n",
        "bob,bob@partner.example,Sign-in-pass-2,,Mail-pass-2,partner,smtp,\n",
        "carol,carol@example.org,Sign-in-pass-3,,Mail-pass-3,,,-1\n",
        "dave,dave@example.org,Sign-in-pass-4,,Mail-pass-4,,imap,30\n",
        "erin,erin@partner.example,Sign-in-pass-5,,Mail-pass-5,partner,pop3,99999\n",
        "fred,fred@example.org,Sign-in-pass-6,,Mail-pass-6,office,pop3,\n",
    )

    with pytest.raises(ProvisioningError) as excinfo:
        import_people(path)

    assert [error.removeprefix(f"{path}:") for error in excinfo.value.errors] == [
        '2: column "protocol": alice@example.org is read over IMAP; change that in the admin site.',
        '3: column "protocol": choose one of imap, pop3, or leave it empty.',
        '4: column "pop3_delete_after_days": “-1” is not a number of days (0 to 32767), nor empty.',
        '5: column "pop3_delete_after_days": only for a POP3 account.',
        '6: column "pop3_delete_after_days": “99999” is not a number of days (0 to 32767), '
        "nor empty.",
        '7: column "preset": the preset “office” has no POP3 server.',
    ]
    assert MailAccount.objects.get().protocol == Protocol.IMAP


@pytest.mark.parametrize(
    "header",
    [
        "username,email,password,mail_login,mail_password,preset,protocol,protocol\n",
        "username,email,password,mail_login,mail_password,preset,pop3_deliver_to\n",
    ],
)
@pytest.mark.django_db
def test_optional_columns_are_named_once_and_known(tmp_path, header):
    path = tmp_path / "people.csv"
    path.write_text(header)
    with pytest.raises(ProvisioningError) as excinfo:
        import_people(path)
    assert excinfo.value.errors == [
        f"{path}:1: the header must name the columns "
        "username,email,password,mail_login,mail_password,preset, "
        "and may add protocol,pop3_delete_after_days."
    ]
