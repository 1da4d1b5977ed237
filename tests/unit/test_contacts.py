"""Contacts: remembered from what a person sends, suggested while typing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.accounts import unreachable_account
from webmail import outbox
from webmail.mime import Address, build_message
from webmail.models import Contact


@pytest.fixture
def alice(db, django_user_model):
    return django_user_model.objects.create_user(username="alice")


@pytest.fixture
def bob(db, django_user_model):
    return django_user_model.objects.create_user(username="bob")


def contacts(user) -> dict[str, tuple[str, int]]:
    return {c.email: (c.name, c.times_used) for c in Contact.objects.filter(user=user)}


def test_remember_counts_each_address_once_per_message_and_lowercases(alice):
    Contact.remember(
        alice,
        [
            Address("Bob Martin", "Bob@Example.test"),
            Address("", "bob@example.test"),
            Address("", "carol@example.test"),
        ],
    )
    Contact.remember(alice, [Address("", "carol@example.test")])
    assert contacts(alice) == {
        "bob@example.test": ("Bob Martin", 1),
        "carol@example.test": ("", 2),
    }


def test_a_known_name_is_kept_and_a_new_one_wins(alice):
    Contact.remember(alice, [Address("Bob Martin", "bob@example.test")])
    Contact.remember(alice, [Address("", "bob@example.test")])
    assert contacts(alice)["bob@example.test"] == ("Bob Martin", 2)
    Contact.remember(alice, [Address("Robert  Martin", "bob@example.test")])
    assert contacts(alice)["bob@example.test"] == ("Robert Martin", 3)


def test_remember_skips_what_is_no_address(alice):
    Contact.remember(alice, [Address("Team", ""), Address("", "x" * 250 + "@example.test")])
    assert contacts(alice) == {}


def test_contacts_are_each_persons_own(alice, bob):
    Contact.remember(alice, [Address("Bob", "bob@example.test")])
    assert Contact.suggest(bob, "bob") == []
    assert [c.email for c in Contact.suggest(alice, "bob")] == ["bob@example.test"]


def test_suggest_matches_the_address_or_a_word_of_the_name(alice):
    Contact.remember(alice, [Address("Jeanne Dupont", "jd@example.test")])
    Contact.remember(alice, [Address("", "dupont.paul@example.test")])
    Contact.remember(alice, [Address("Marc Lavoine", "marc@example.test")])

    assert {c.email for c in Contact.suggest(alice, "DUP")} == {
        "jd@example.test",
        "dupont.paul@example.test",
    }
    assert [c.email for c in Contact.suggest(alice, "jeanne")] == ["jd@example.test"]
    assert [c.email for c in Contact.suggest(alice, "  lav")] == ["marc@example.test"]
    # Inside a word is not a match.
    assert Contact.suggest(alice, "anne") == []
    assert Contact.suggest(alice, "   ") == []
    # LIKE's wildcards are taken literally.
    assert Contact.suggest(alice, "%") == []
    assert Contact.suggest(alice, "_") == []


def test_suggest_puts_the_most_used_first_and_stops_at_the_limit(alice):
    for number in range(12):
        for _ in range(number):
            Contact.remember(alice, [Address("", f"user{number:02d}@example.test")])
    Contact.remember(alice, [Address("", "user00@example.test")])
    Contact.remember(alice, [Address("", "user01@example.test")])
    # Used as often: the one used last comes first.
    Contact.objects.filter(email="user01@example.test").update(
        last_used=timezone.now() - timedelta(days=1)
    )

    found = [c.email for c in Contact.suggest(alice, "user", limit=5)]
    assert found == [f"user{n:02d}@example.test" for n in (11, 10, 9, 8, 7)]
    last = [c.email for c in Contact.suggest(alice, "user0", limit=20)][-3:]
    assert last == ["user02@example.test", "user01@example.test", "user00@example.test"]


def test_queue_remembers_to_cc_with_names_and_bcc_without(alice, monkeypatch):
    monkeypatch.setattr(outbox, "dispatch", lambda *args: None)
    account = unreachable_account(alice)
    message, recipients = build_message(
        sender=Address("Alice", "alice@example.test"),
        to='"Martin, Bob" <bob@example.test>, Zoë Ünal <zoe@exämple.test>',
        cc="Carol <carol@example.test>",
        bcc="Dan Secret <dan@example.test>",
        subject="Plans",
        text="Hello",
        message_id_domain="example.test",
    )

    outbox.queue(account, message, recipients)

    assert contacts(alice) == {
        "bob@example.test": ("Martin, Bob", 1),
        "zoe@xn--exmple-cua.test": ("Zoë Ünal", 1),
        "carol@example.test": ("Carol", 1),
        "dan@example.test": ("", 1),
    }
