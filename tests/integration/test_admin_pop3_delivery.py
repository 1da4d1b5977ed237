"""Which account a POP3 account may deliver into: the model's rules and the admin's forms."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import MailAccount, Protocol
from tests.integration.test_admin import ADD_URL, account_form, change_url, current_form
from tests.support.accounts import unreachable_account

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

User = get_user_model()


@pytest.fixture
def owner(db):
    return User.objects.create_user("bob", email="bob@example.org", password="Sign-in-pass-1")


@pytest.fixture
def other(db):
    return User.objects.create_user("eve", email="eve@example.org", password="Sign-in-pass-2")


@pytest.fixture
def imap_account(owner) -> MailAccount:
    return unreachable_account(owner, "bob@example.org")


@pytest.fixture
def pop3_account(owner) -> MailAccount:
    return unreachable_account(owner, "bob@old-provider.example", protocol=Protocol.POP3)


def delivery_errors(account: MailAccount) -> dict[str, list[str]]:
    try:
        account.full_clean()
    except ValidationError as exc:
        return exc.message_dict
    return {}


# The model's rules ----------------------------------------------------------------


def test_a_pop3_account_delivers_into_an_imap_account_of_the_same_person(
    pop3_account, imap_account
):
    assert pop3_account.delivers_into is None
    pop3_account.pop3_deliver_to = imap_account

    assert delivery_errors(pop3_account) == {}
    assert pop3_account.delivers_into == imap_account
    assert pop3_account.pop3_deliver_folder == "INBOX"


def test_only_a_pop3_account_delivers_into_another(owner, imap_account):
    second = unreachable_account(owner, "bob@elsewhere.example", pop3_deliver_to=imap_account)

    assert delivery_errors(second) == {
        "pop3_deliver_to": ["Only a POP3 account delivers into another account."]
    }
    assert second.delivers_into is None


def test_the_account_delivered_into_must_be_an_imap_one(owner, pop3_account):
    pop3_account.pop3_deliver_to = unreachable_account(
        owner, "bob@pop.example", protocol=Protocol.POP3
    )
    assert delivery_errors(pop3_account) == {"pop3_deliver_to": ["Choose an IMAP account."]}


def test_the_account_delivered_into_must_be_the_same_persons(pop3_account, other):
    pop3_account.pop3_deliver_to = unreachable_account(other, "eve@example.org")
    assert delivery_errors(pop3_account) == {
        "pop3_deliver_to": ["Choose an account of the same person."]
    }


def test_an_account_cannot_deliver_into_itself(pop3_account):
    pop3_account.pop3_deliver_to = pop3_account
    assert delivery_errors(pop3_account) == {
        "pop3_deliver_to": ["An account cannot deliver into itself."]
    }


def test_an_account_delivered_into_stays_an_imap_account(pop3_account, imap_account):
    pop3_account.pop3_deliver_to = imap_account
    pop3_account.save()
    imap_account.protocol = Protocol.POP3

    assert list(delivery_errors(imap_account)) == ["protocol"]


def test_the_folder_is_one_line(pop3_account, imap_account):
    pop3_account.pop3_deliver_to = imap_account
    pop3_account.pop3_deliver_folder = "INBOX\r\nA1 DELETE INBOX"
    assert delivery_errors(pop3_account) == {"pop3_deliver_folder": ["This must be on one line."]}


def test_deleting_the_account_delivered_into_brings_the_mail_back_to_facteur(
    pop3_account, imap_account
):
    pop3_account.pop3_deliver_to = imap_account
    pop3_account.save()

    imap_account.delete()

    pop3_account.refresh_from_db()
    assert pop3_account.delivers_into is None


# The admin's forms ------------------------------------------------------------------


def test_the_account_page_offers_the_persons_imap_accounts(
    admin_client, owner, other, pop3_account, imap_account
):
    unreachable_account(owner, "bob@pop.example", protocol=Protocol.POP3)
    unreachable_account(other, "eve@example.org")

    form = admin_client.get(change_url(pop3_account)).context["adminform"].form

    assert list(form.fields["pop3_deliver_to"].queryset) == [imap_account]
    content = admin_client.get(change_url(pop3_account)).content.decode()
    assert "Another account of the same person, an IMAP one" in content


def test_delivery_is_set_in_the_account_page(admin_client, pop3_account, imap_account):
    response = admin_client.post(
        change_url(pop3_account),
        current_form(
            admin_client, pop3_account, pop3_deliver_to=imap_account.pk, pop3_deliver_folder=" "
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    pop3_account.refresh_from_db()
    assert pop3_account.delivers_into == imap_account
    assert pop3_account.pop3_deliver_folder == "INBOX"  # empty means the Inbox


def test_the_add_page_refuses_another_persons_account(admin_client, owner, other):
    elsewhere = unreachable_account(other, "eve@example.org")
    response = admin_client.post(
        ADD_URL,
        account_form(
            user=owner.pk,
            email="bob@old-provider.example",
            password="Mail-pass-1",
            protocol=Protocol.POP3,
            incoming_host="pop.example.org",
            incoming_port="995",
            smtp_host="smtp.example.org",
            smtp_port="587",
            pop3_deliver_to=elsewhere.pk,
            pop3_deliver_folder="Archive",
        ),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"pop3_deliver_to": ["Choose an account of the same person."]}
    assert not MailAccount.objects.filter(email="bob@old-provider.example").exists()


def test_the_person_page_offers_each_account_that_persons_imap_accounts(
    admin_client, owner, other, pop3_account, imap_account
):
    unreachable_account(other, "eve@example.org")

    response = admin_client.get(reverse("admin:auth_user_change", args=[owner.pk]))

    formset = response.context["inline_admin_formsets"][0].formset
    for form in [*formset.forms, formset.empty_form]:
        offered = list(form.fields["pop3_deliver_to"].queryset)
        assert offered == [account for account in [imap_account] if account != form.instance]
