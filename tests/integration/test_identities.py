"""Identities: what each account sends as, the person's pages and the admin's inline."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Identity, MailAccount, SendAsGrant
from webmail.mime import Address
from webmail.models import OutgoingMessage

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LIST_URL = reverse("accounts:identities")


def make_account(user, email: str, **fields) -> MailAccount:
    account = MailAccount(
        user=user,
        email=email,
        login=email,
        incoming_host="imap.example.test",
        incoming_port=993,
        smtp_host="smtp.example.test",
        smtp_port=587,
        **fields,
    )
    account.set_password("Mail-pass-1")
    account.save()
    return account


@pytest.fixture
def account(person) -> MailAccount:
    return make_account(person, "me@example.test")


@pytest.fixture
def stranger(django_user_model):
    return django_user_model.objects.create_user(username="stranger", password="x-Pass-123!")


@pytest.fixture
def strangers_identity(stranger) -> Identity:
    account = make_account(stranger, "stranger@example.test")
    identity = account.identities.get()
    identity.name = "Stranger"
    identity.save()
    return identity


# The model ---------------------------------------------------------------------


def test_a_new_account_gets_a_default_identity(person):
    person.first_name, person.last_name = "Alice", "Martin"
    person.save()
    account = make_account(person, "alice@example.test")

    (identity,) = account.sending_identities()

    assert identity.address() == Address(name="Alice Martin", email="alice@example.test")
    assert account.sending_identities() == [identity]
    assert Identity.objects.count() == 1


def test_the_default_identity_uses_the_accounts_display_name(person):
    account = make_account(person, "desk@example.test", display_name="Front desk")
    assert account.sending_identities()[0].name == "Front desk"


def test_no_page_makes_an_identity_when_shown(signed_in_client, account):
    account.identities.all().delete()
    assert signed_in_client.get(LIST_URL).status_code == 200
    response = signed_in_client.get(reverse("webmail:compose", args=[account.pk]))
    assert response.status_code == 302
    assert response["Location"] == LIST_URL
    assert not account.identities.exists()


def test_the_last_identity_that_may_send_cannot_be_deleted(signed_in_client, account):
    (own,) = account.sending_identities()
    account.identities.create(name="Director", email="director@office.example")
    response = signed_in_client.post(reverse("accounts:identity-delete", args=[own.pk]))
    assert response.status_code == 302
    assert account.sending_identities() == [own]


def test_identities_come_in_their_order_and_make_the_own_addresses(account):
    account.identities.all().delete()
    account.send_as_grants.create(kind=SendAsGrant.Kind.ADDRESS, value="sales@example.test")
    second = account.identities.create(name="B", email="Sales@Example.test", position=2)
    first = account.identities.create(name="A", email="me@example.test", position=1)
    assert account.sending_identities() == [first, second]
    assert account.own_addresses() == {"me@example.test", "sales@example.test"}


# The person's pages ------------------------------------------------------------


def test_pages_need_signing_in(client, account):
    identity = account.sending_identities()[0]
    for url in (
        LIST_URL,
        reverse("accounts:identity-add", args=[account.pk]),
        reverse("accounts:identity-edit", args=[identity.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    client.post(reverse("accounts:identity-delete", args=[identity.pk]))
    assert Identity.objects.filter(pk=identity.pk).exists()


def test_the_list_shows_only_the_persons_own(signed_in_client, account, strangers_identity):
    content = signed_in_client.get(LIST_URL).content.decode()
    assert "me@example.test" in content
    assert reverse("accounts:identity-add", args=[account.pk]) in content
    assert reverse("webmail:home") in content
    assert "stranger@example.test" not in content


def test_another_persons_identities_are_out_of_reach(
    signed_in_client, strangers_identity, stranger
):
    account = strangers_identity.account
    edit = reverse("accounts:identity-edit", args=[strangers_identity.pk])
    changes = {"name": "Mallory", "email": "mallory@example.test", "signature": ""}
    assert signed_in_client.get(edit).status_code == 404
    assert signed_in_client.post(edit, changes).status_code == 404
    delete = reverse("accounts:identity-delete", args=[strangers_identity.pk])
    assert signed_in_client.post(delete).status_code == 404
    add = reverse("accounts:identity-add", args=[account.pk])
    assert signed_in_client.get(add).status_code == 404
    assert signed_in_client.post(add, changes).status_code == 404

    strangers_identity.refresh_from_db()
    assert strangers_identity.name == "Stranger"
    assert account.identities.count() == 1


def test_add_edit_and_delete(signed_in_client, account):
    account.send_as_grants.create(kind=SendAsGrant.Kind.DOMAIN, value="example.test")
    default = account.sending_identities()[0]
    response = signed_in_client.post(
        reverse("accounts:identity-add", args=[account.pk]),
        {"name": "Support", "email": "support@example.test", "signature": "--\r\nThe team"},
    )
    assert response.status_code == 302
    assert response["Location"] == LIST_URL
    added = account.identities.get(email="support@example.test")
    assert (added.name, added.signature, added.position) == ("Support", "--\nThe team", 1)
    assert account.sending_identities() == [default, added]

    response = signed_in_client.post(
        reverse("accounts:identity-edit", args=[added.pk]),
        {"name": "Help desk", "email": "help@example.test", "signature": ""},
    )
    assert response.status_code == 302
    added.refresh_from_db()
    assert (added.name, added.email, added.signature) == ("Help desk", "help@example.test", "")

    delete = reverse("accounts:identity-delete", args=[added.pk])
    assert signed_in_client.get(delete).status_code == 405
    assert signed_in_client.post(delete).status_code == 302
    assert account.sending_identities() == [default]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not an address"),
        ("email", "me@example.test\r\nBcc: victim@example.test"),
        ("name", "Support\r\nBcc: victim@example.test"),
        ("name", "Support\nX"),
    ],
)
def test_the_form_refuses_bad_addresses_and_line_breaks(signed_in_client, account, field, value):
    data = {"name": "Support", "email": "support@example.test", "signature": ""}
    data[field] = value
    response = signed_in_client.post(reverse("accounts:identity-add", args=[account.pk]), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert account.identities.count() == 1


def test_the_form_page_renders(signed_in_client, account):
    response = signed_in_client.get(reverse("accounts:identity-add", args=[account.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="email"' in content
    assert "me@example.test" in content


# The administrator's inline ----------------------------------------------------


def account_page(admin_client, account: MailAccount, inline: str) -> tuple[str, dict]:
    """The account's admin page with the ``inline`` formset: its URL and its fields as posted."""
    url = reverse("admin:accounts_mailaccount_change", args=[account.pk])
    response = admin_client.get(url)
    assert f'name="{inline}-TOTAL_FORMS"' in response.content.decode()
    form = response.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if name != "accept_untrusted"}
    return url, {name: "" if value is None else value for name, value in data.items()}


def test_the_admin_edits_identities_in_the_account_page(admin_client, account):
    account.identities.all().delete()
    url, data = account_page(admin_client, account, "identities")
    data.update(
        {
            "identities-TOTAL_FORMS": "1",
            "identities-INITIAL_FORMS": "0",
            "identities-MIN_NUM_FORMS": "0",
            "identities-MAX_NUM_FORMS": "1000",
            "identities-0-name": "Sales",
            "identities-0-email": "sales@example.test",
            "identities-0-signature": "",
            "identities-0-position": "0",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 302
    assert [i.email for i in account.identities.all()] == ["sales@example.test"]

    data["identities-0-email"] = "bad address"
    data["identities-0-name"] = "Line\nbreak"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert account.identities.count() == 1


# Who an account may send as ------------------------------------------------------


def add_identity(client, account: MailAccount, email: str):
    return client.post(
        reverse("accounts:identity-add", args=[account.pk]),
        {"name": "Someone", "email": email, "signature": ""},
    )


def test_a_person_cannot_add_an_address_nobody_granted(signed_in_client, account):
    response = add_identity(signed_in_client, account, "director@office.example")
    assert response.status_code == 200
    assert "may not send as this address" in response.context["form"].errors["email"][0]
    assert not account.identities.filter(email="director@office.example").exists()
    # Nor by editing an allowed identity into one.
    own = account.sending_identities()[0]
    response = signed_in_client.post(
        reverse("accounts:identity-edit", args=[own.pk]),
        {"name": "Director", "email": "director@office.example", "signature": ""},
    )
    assert response.status_code == 200
    own.refresh_from_db()
    assert own.email == "me@example.test"


def test_the_accounts_own_address_in_any_case_is_always_allowed(signed_in_client, account):
    assert add_identity(signed_in_client, account, "Me@Example.TEST").status_code == 302


def test_granted_addresses_and_domains(signed_in_client, account):
    account.send_as_grants.create(kind=SendAsGrant.Kind.ADDRESS, value="boss@office.example")
    account.send_as_grants.create(kind=SendAsGrant.Kind.DOMAIN, value="sales.example")
    for allowed in ("boss@office.example", "Anyone@Sales.example"):
        assert add_identity(signed_in_client, account, allowed).status_code == 302, allowed
    for refused in ("other@office.example", "x@eu.sales.example", "x@sales.example.evil"):
        assert add_identity(signed_in_client, account, refused).status_code == 200, refused


def test_one_accounts_grant_does_not_reach_another(signed_in_client, person, account):
    other = make_account(person, "other@example.test")
    other.send_as_grants.create(kind=SendAsGrant.Kind.DOMAIN, value="sales.example")
    assert add_identity(signed_in_client, account, "x@sales.example").status_code == 200


def test_an_identity_made_before_the_rule_cannot_send(signed_in_client, account):
    own = account.sending_identities()[0]
    forged = account.identities.create(name="Director", email="director@office.example")
    assert account.sending_identities() == [own]
    page = signed_in_client.get(LIST_URL).content.decode()
    assert "it cannot send" in page
    compose = reverse("webmail:compose", args=[account.pk])
    response = signed_in_client.post(
        compose,
        {"action": "send", "identity": forged.pk, "to": "bob@example.test", "rich": ""},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert "may no longer send as director@office.example" in response.content.decode()
    assert not OutgoingMessage.objects.exists()


def test_the_admin_grants_a_domain_in_the_account_page(admin_client, account):
    url, data = account_page(admin_client, account, "send_as_grants")
    data.update(
        {
            "send_as_grants-TOTAL_FORMS": "2",
            "send_as_grants-INITIAL_FORMS": "0",
            "send_as_grants-0-kind": "domain",
            "send_as_grants-0-value": "@Sales.Example.",
            "send_as_grants-1-kind": "address",
            "send_as_grants-1-value": "not an address",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert not account.send_as_grants.exists()
    data["send_as_grants-1-value"] = "Boss@Office.example"
    assert admin_client.post(url, data).status_code == 302
    assert {str(g) for g in account.send_as_grants.all()} == {
        "*@sales.example",
        "boss@office.example",
    }
    assert account.may_send_as("anyone@sales.example")


@pytest.mark.parametrize(
    ("from_header", "allowed"),
    [
        (b"Me <me@example.test>", True),
        (b"=?utf-8?q?Moi?= <ME@EXAMPLE.TEST>", True),
        (b"me@example.test, boss@office.example", False),
        (b"Director <director@office.example>", False),
        (b"me@example.test (<director@office.example>)", True),
        (b"<>", False),
        (b"not an address", False),
        (None, False),
    ],
)
def test_the_from_header_is_checked_address_by_address(account, from_header, allowed):
    from webmail.outbox import may_send_from

    headers = b"Subject: x\r\n" + (b"From: " + from_header + b"\r\n" if from_header else b"")
    assert may_send_from(account, headers + b"\r\nbody\r\n") is allowed
