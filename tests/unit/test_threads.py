"""Threading a folder's messages by their headers (RFC 5256 REFERENCES), as pure logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webmail.threads import (
    MAX_REFERENCES,
    ThreadHeaders,
    base_subject,
    read_headers,
    reference_fields,
    reference_ids,
    thread,
)

START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def msg(
    uid: int,
    message_id: str | None = None,
    references: tuple[str, ...] = (),
    subject: str = "",
    hours: float | None = None,
) -> ThreadHeaders:
    """Message ``uid`` sent ``hours`` (by default ``uid``) hours after START."""
    return ThreadHeaders(
        uid=uid,
        message_id=message_id if message_id is not None else f"<m{uid}@example.org>",
        references=references,
        subject=subject or f"Subject {uid}",
        date=START + timedelta(hours=uid if hours is None else hours),
    )


def groups(threads: list[list[int]]) -> set[frozenset[int]]:
    return {frozenset(t) for t in threads}


# Links by Message-ID ----------------------------------------------------------


def test_replies_join_their_parent_in_tree_order():
    threads = thread(
        [
            msg(1),
            msg(2, references=("<m1@example.org>",)),
            msg(3, references=("<m1@example.org>", "<m2@example.org>")),
            msg(4, subject="Unrelated"),
        ]
    )
    assert threads == [[1, 2, 3], [4]]


def test_threads_come_in_the_order_of_their_first_message():
    threads = thread([msg(1, hours=5), msg(2, hours=1), msg(3, references=("<m1@example.org>",))])
    assert threads == [[2], [1, 3]]


def test_a_reply_that_arrived_first_still_joins_its_parent():
    threads = thread([msg(1, references=("<m2@example.org>",), hours=2), msg(2, hours=1)])
    assert threads == [[2, 1]]


def test_a_missing_parent_still_holds_its_replies_together():
    # Both answer <gone@example.org>, which is not in the folder: one conversation.
    threads = thread(
        [
            msg(1, references=("<gone@example.org>",), subject="First"),
            msg(2, references=("<gone@example.org>",), subject="Second"),
        ]
    )
    assert groups(threads) == {frozenset({1, 2})}


def test_a_missing_grandparent_is_bridged():
    threads = thread(
        [
            msg(1),
            msg(3, references=("<m1@example.org>", "<gone@example.org>"), subject="Other"),
        ]
    )
    assert threads == [[1, 3]]


def test_a_lone_missing_parent_leaves_its_reply_a_conversation_of_its_own():
    threads = thread([msg(1, references=("<gone@example.org>",)), msg(2, subject="Other")])
    assert groups(threads) == {frozenset({1}), frozenset({2})}


def test_in_reply_to_stands_for_references_only_without_them():
    assert reference_ids("", "<a@x> <b@x>") == ("<a@x>",)
    assert reference_ids("<r@x> <s@x>", "<a@x>") == ("<r@x>", "<s@x>")
    assert reference_ids("no identifier here", "<a@x>") == ("<a@x>",)


def test_long_references_keep_the_first_and_the_latest():
    ids = " ".join(f"<{n}@x>" for n in range(MAX_REFERENCES + 50))
    kept = reference_ids(ids, "")
    assert len(kept) == MAX_REFERENCES
    assert kept[0] == "<0@x>" and kept[-1] == f"<{MAX_REFERENCES + 49}@x>"


# What real mail gets wrong ----------------------------------------------------


def test_a_cycle_in_references_does_not_loop():
    threads = thread(
        [
            msg(1, references=("<m2@example.org>",)),
            msg(2, references=("<m1@example.org>",)),
            msg(3, references=("<m1@example.org>", "<m2@example.org>", "<m1@example.org>")),
        ]
    )
    assert groups(threads) == {frozenset({1, 2, 3})}
    assert sorted(threads[0]) == [1, 2, 3]  # every message once


def test_a_message_referring_to_itself_is_no_loop():
    threads = thread(
        [
            msg(1, references=("<m1@example.org>",)),
            msg(2, references=("<m2@example.org>", "<m1@example.org>")),
        ]
    )
    assert groups(threads) == {frozenset({1, 2})}


def test_duplicate_message_ids_keep_both_messages():
    # The second message with <dup> is no parent of the reply: the first one is.
    threads = thread(
        [
            msg(1, "<dup@example.org>", subject="Original"),
            msg(2, "<dup@example.org>", subject="Copy"),
            msg(3, references=("<dup@example.org>",), subject="Re: Original"),
        ]
    )
    assert groups(threads) == {frozenset({1, 3}), frozenset({2})}


def test_messages_without_message_id_are_kept_apart():
    threads = thread([msg(1, message_id="", subject="A"), msg(2, message_id="", subject="B")])
    assert groups(threads) == {frozenset({1}), frozenset({2})}


def test_dates_missing_or_naive_do_not_break_the_order():
    naive = ThreadHeaders(2, "<n@x>", (), "Naive", None)
    assert groups(thread([msg(1), naive])) == {frozenset({1}), frozenset({2})}


def test_a_long_chain_needs_no_recursion():
    length = 5000
    chain = [msg(1)] + [
        msg(n, references=(f"<m{n - 1}@example.org>",), subject=f"Re: chain {n}")
        for n in range(2, length + 1)
    ]
    assert thread(reversed(chain)) == [list(range(1, length + 1))]


# Subjects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject, expected",
    [
        ("Budget", ("budget", False)),
        ("Re: Budget", ("budget", True)),
        ("RE:  re: Fwd: Budget", ("budget", True)),
        ("Fw : Budget", ("budget", True)),
        ("Re[2]: Budget", ("budget", True)),
        ("[office] Re: Budget", ("budget", True)),
        ("[office] Budget", ("budget", False)),
        ("Budget (fwd)", ("budget", True)),
        ("[Fwd: Re: Budget]", ("budget", True)),
        ("[office]", ("[office]", False)),
        ("  Budget\t 2025  ", ("budget 2025", False)),
        ("Reply guy", ("reply guy", False)),
        ("", ("", False)),
    ],
)
def test_base_subject(subject, expected):
    assert base_subject(subject) == expected


def test_subject_alone_groups_a_reply_with_its_original():
    threads = thread(
        [
            msg(1, subject="Lunch on Friday"),
            msg(2, subject="Re: Lunch on Friday"),
            msg(3, subject="RE: [team] lunch on friday"),
            msg(4, subject="Lunch on Saturday"),
        ]
    )
    assert threads == [[1, 2, 3], [4]]


def test_two_originals_with_one_subject_become_one_conversation():
    threads = thread([msg(1, subject="Weekly report"), msg(2, subject="Weekly report")])
    assert groups(threads) == {frozenset({1, 2})}


def test_subject_grouping_joins_whole_threads():
    threads = thread(
        [
            msg(1, subject="Plans"),
            msg(2, subject="Re: Plans", references=("<m1@example.org>",)),
            msg(3, subject="Re: Plans", references=("<gone@example.org>",)),
            msg(4, subject="Re: Plans", references=("<gone@example.org>",)),
        ]
    )
    assert groups(threads) == {frozenset({1, 2, 3, 4})}


def test_empty_subjects_are_never_grouped():
    threads = thread([msg(1, subject="Re:"), msg(2, subject="Re:")])
    # "Re:" leaves nothing: such messages stay apart unless their references join them.
    assert groups(threads) == {frozenset({1}), frozenset({2})}


# Reading headers --------------------------------------------------------------


def test_read_headers_from_a_header_fields_reply():
    raw = (
        b"Message-ID: <c@example.org>\r\n"
        b"In-Reply-To: <b@example.org>\r\n"
        b"References: <a@example.org>\r\n <b@example.org>\r\n"
        b"Subject: =?UTF-8?Q?R=C3=A9union?=\r\n"
        b"Date: Tue, 04 Mar 2025 10:15:00 +0100\r\n\r\n"
    )
    headers = read_headers(7, raw)
    assert headers == ThreadHeaders(
        uid=7,
        message_id="<c@example.org>",
        references=("<a@example.org>", "<b@example.org>"),
        subject="Réunion",
        date=datetime(2025, 3, 4, 9, 15, tzinfo=UTC),
    )


def test_read_headers_stops_at_the_body_and_never_raises():
    arrival = datetime(2025, 1, 1, 8, 0)
    raw = b"Subject: Hello\r\nDate: not a date\r\n\r\nReferences: <body@x>\r\n"
    headers = read_headers(3, raw, arrival)
    assert headers.references == ()
    assert headers.message_id is None
    assert headers.date == arrival.replace(tzinfo=UTC)
    assert read_headers(4, b"\xff\xfe garbage").uid == 4


def test_read_headers_takes_the_obsolete_syntax_servers_take():
    raw = (
        b"Subject     : Saying Hello\r\n"
        b"Message-ID  : <1234   @   local(blah)  .machine .example>\r\n"
        b"References: (see) <a@x>\r\n\t(and) <b@x>\r\n\r\n"
    )
    headers = read_headers(1, raw)
    assert headers.subject == "Saying Hello"
    assert headers.message_id == "<1234@local.machine.example>"
    assert headers.references == ("<a@x>", "<b@x>")


def test_reference_fields_are_identifiers_only():
    raw = b"In-Reply-To: Bob's message <b@x> (of Monday)\r\nReferences: <a@x> <b@x>\r\n\r\nbody"
    assert reference_fields(raw) == ("<b@x>", "<a@x> <b@x>")
    assert reference_fields(b"Subject: none\r\n\r\n") == ("", "")


def test_deeply_nested_comments_cost_one_pass():
    raw = b"References: " + b"(" * 30_000 + b"<a@x>" + b")" * 30_000 + b" <b@x>\r\n\r\n"
    assert read_headers(1, raw).references == ("<b@x>",)
