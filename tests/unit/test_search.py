"""The search query: read from a URL, validated, and put into IMAP SEARCH criteria."""

from __future__ import annotations

from datetime import date

import pytest

from webmail.search import (
    BODY_TEXT_CHARS,
    SearchForm,
    SearchQuery,
    body_text,
    header_keys,
    imap_charset,
    imap_criteria,
    imap_date,
    imap_string,
    parse_esearch,
    sequence_set,
    split_words,
)

QUICK = b'OR FROM "%s" OR TO "%s" OR CC "%s" OR SUBJECT "%s" BODY "%s"'


def criteria(**data: str) -> bytes:
    """The search keys of a query given as a URL gives it, as they go on the command line."""
    form = SearchForm(data)
    assert form.is_valid(), form.errors
    return b" ".join(imap_criteria(form.query()))


def errors(**data: str) -> dict:
    form = SearchForm(data)
    assert not form.is_valid()
    return form.errors


# Words ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("budget", ("budget",)),
        ("  budget   report ", ("budget", "report")),
        ('"quarterly report" budget', ("quarterly report", "budget")),
        ('"  spaced   out  "', ("spaced out",)),
        ('"unclosed phrase', ("unclosed phrase",)),
        ('"" budget ""', ("budget",)),
        ('a"b', ("a", "b")),
        ("Réunion 日本語", ("Réunion", "日本語")),
        ("", ()),
    ],
)
def test_words_and_quoted_phrases(text, words):
    assert split_words(text) == words


# The form ---------------------------------------------------------------------


def test_a_full_query_from_the_url():
    form = SearchForm(
        {
            "q": 'budget "next year"',
            "sender": "alice",
            "recipient": "bob carol",
            "subject": "report",
            "body": "figures",
            "after": "2024-03-01",
            "before": "2024-04-01",
            "attachment": "on",
            "unread": "on",
            "flagged": "on",
            "larger": "10",
            "smaller": "2048",
            "scope": "all",
            "trash": "on",
        }
    )
    assert form.is_valid(), form.errors
    assert form.query() == SearchQuery(
        words=("budget", "next year"),
        sender=("alice",),
        recipient=("bob", "carol"),
        subject=("report",),
        body=("figures",),
        after=date(2024, 3, 1),
        before=date(2024, 4, 1),
        has_attachment=True,
        unread=True,
        flagged=True,
        larger=10 * 1024,
        smaller=2048 * 1024,
        everywhere=True,
        include_trash=True,
    )


def test_an_empty_form_is_an_empty_query_in_this_folder():
    form = SearchForm({})
    assert form.is_valid()
    query = form.query()
    assert query == SearchQuery()
    assert query.is_empty and not query.everywhere


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery(words=("x",)),
        SearchQuery(unread=True),
        SearchQuery(larger=0),
        SearchQuery(after=date(2024, 1, 1)),
    ],
)
def test_any_criterion_makes_a_query(query):
    assert not query.is_empty


def test_the_scope_alone_is_no_query():
    assert SearchQuery(everywhere=True, include_trash=True).is_empty


def test_advanced_is_anything_beyond_words():
    assert not SearchQuery(words=("a", "b")).is_advanced
    assert SearchQuery(words=("a",), flagged=True).is_advanced
    assert SearchQuery(everywhere=True).is_advanced


def test_the_digest_names_the_whole_query():
    digests = {
        SearchQuery(words=("a",)).digest,
        SearchQuery(words=("a",), everywhere=True).digest,
        SearchQuery(words=("a",), include_trash=True).digest,
        SearchQuery(sender=("a",)).digest,
        SearchQuery(words=("b",)).digest,
    }
    assert len(digests) == 5
    assert SearchQuery(words=("a",)).digest == SearchQuery(words=("a",)).digest


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"q": "budget\r\nA1 LOGOUT"}, "q", "Line breaks"),
        ({"sender": "a\nb"}, "sender", "Line breaks"),
        ({"subject": "tab\there"}, "subject", "control characters"),
        ({"body": "nul\x00"}, "body", "Null characters"),
        ({"q": "x" * 201}, "q", "at most 200 characters"),
        ({"q": " ".join(["w"] * 11)}, "q", "at most 10 words"),
        ({"after": "2024-02-30"}, "after", "valid date"),
        ({"before": "01/02/2024"}, "before", "valid date"),
        ({"after": "2024-03-01", "before": "2024-03-01"}, "before", "must come after"),
        ({"larger": "-1"}, "larger", "greater than or equal to 0"),
        ({"larger": "1.5"}, "larger", "whole number"),
        ({"smaller": str(2**32)}, "smaller", "less than or equal to"),
        ({"larger": "10", "smaller": "10"}, "smaller", "both larger and smaller"),
        ({"scope": "elsewhere"}, "scope", "Select a valid choice"),
    ],
)
def test_what_cannot_be_searched_for_is_refused(data, field, message):
    assert message in " ".join(errors(**data)[field])


def test_ten_words_and_200_characters_are_fine():
    assert SearchForm({"q": " ".join(["w"] * 10), "subject": "x" * 200}).is_valid()


def test_sizes_are_kilobytes():
    form = SearchForm({"larger": "0", "smaller": "1"})
    assert form.is_valid()
    query = form.query()
    assert (query.larger, query.smaller) == (0, 1024)


def test_a_description_for_the_results_page():
    query = SearchQuery(
        words=("budget", "next year"),
        sender=("alice",),
        after=date(2024, 3, 1),
        has_attachment=True,
        unread=True,
        larger=2048,
    )
    assert query.describe() == (
        "“budget”, “next year”, from: alice, since March 1, 2024, with attachments, "
        "unread, larger than 2 KB"
    )


# IMAP criteria ----------------------------------------------------------------


def test_the_quick_search_looks_where_a_person_reads():
    assert criteria(q="budget") == QUICK % ((b"budget",) * 5)


def test_each_quick_search_word_must_be_found():
    assert criteria(q='budget "next year"') == b" ".join(
        [QUICK % ((b"budget",) * 5), QUICK % ((b"next year",) * 5)]
    )


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        ({"sender": "alice"}, b'FROM "alice"'),
        ({"sender": "alice martin"}, b'FROM "alice" FROM "martin"'),
        ({"recipient": "bob"}, b'OR TO "bob" OR CC "bob" BCC "bob"'),
        ({"subject": "report"}, b'SUBJECT "report"'),
        ({"body": "figures"}, b'BODY "figures"'),
        ({"after": "2025-03-04"}, b"SENTSINCE 4-Mar-2025"),
        ({"before": "2024-12-25"}, b"SENTBEFORE 25-Dec-2024"),
        ({"attachment": "on"}, b'HEADER Content-Type "multipart/mixed"'),
        ({"unread": "on"}, b"UNSEEN"),
        ({"flagged": "on"}, b"FLAGGED"),
        ({"larger": "100"}, b"LARGER 102400"),
        ({"smaller": "1"}, b"SMALLER 1024"),
        ({}, b"ALL"),
        ({"scope": "all", "trash": "on"}, b"ALL"),
    ],
)
def test_each_criterion(data, keys):
    assert criteria(**data) == keys


def test_all_criteria_together_are_one_conjunction():
    assert criteria(
        q="budget",
        sender="alice",
        recipient="bob",
        subject="report",
        body="figures",
        after="2024-03-01",
        before="2024-04-01",
        attachment="on",
        unread="on",
        flagged="on",
        larger="1",
        smaller="2",
    ) == b" ".join(
        [
            QUICK % ((b"budget",) * 5),
            b'FROM "alice"',
            b'OR TO "bob" OR CC "bob" BCC "bob"',
            b'SUBJECT "report"',
            b'BODY "figures"',
            b"SENTSINCE 1-Mar-2024 SENTBEFORE 1-Apr-2024",
            b'HEADER Content-Type "multipart/mixed"',
            b"UNSEEN FLAGGED LARGER 1024 SMALLER 2048",
        ]
    )


@pytest.mark.parametrize(
    ("text", "argument"),
    [
        ("plain", b'"plain"'),
        ('say "hi"', b'"say \\"hi\\""'),
        ("back\\slash", b'"back\\\\slash"'),
        ("(paren) {3} *%]", b'"(paren) {3} *%]"'),
        ("NIL", b'"NIL"'),
        ("Réunion", "Réunion".encode()),
        ("日本語", "日本語".encode()),
    ],
)
def test_strings_are_quoted_or_sent_as_utf8(text, argument):
    assert imap_string(text) == argument


@pytest.mark.parametrize("text", ["a\r\nb", "a\nb", "a\x00b"])
def test_no_line_break_ever_reaches_the_command_line(text):
    with pytest.raises(ValueError):
        imap_string(text)


def test_utf8_is_named_only_when_needed():
    assert imap_charset(imap_criteria(SearchQuery(words=("budget",)))) is None
    keys = imap_criteria(SearchQuery(words=("budget",), subject=("Réunion",)))
    assert imap_charset(keys) == b"UTF-8"
    assert "Réunion".encode() in keys


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (date(2025, 3, 4), b"4-Mar-2025"),
        (date(2024, 12, 31), b"31-Dec-2024"),
        (date(999, 1, 1), b"1-Jan-0999"),
    ],
)
def test_dates_in_imap_form(day, text):
    assert imap_date(day) == text


# ESEARCH ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "uids"),
    [
        (b'(TAG "A282") UID ALL 4:7,9', [4, 5, 6, 7, 9]),
        (b'(TAG "A282") UID COUNT 3 ALL 1,3,5', [1, 3, 5]),
        (b'(TAG "ALL 1:9") UID ALL 2', [2]),
        (b'(tag "A1") uid all 7:5', [5, 6, 7]),
        (b'(TAG "A282") UID', []),
        (b'(TAG "A282") UID COUNT 0', []),
        (b"UID ALL 10", [10]),
        (None, []),
    ],
)
def test_esearch_responses(line, uids):
    assert parse_esearch(line, limit=100) == uids


def test_a_set_larger_than_the_folder_is_refused():
    with pytest.raises(ValueError):
        parse_esearch(b'(TAG "A1") UID ALL 1:4294967295', limit=100_000)
    assert sequence_set(b"1:3,2:4", limit=10) == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        sequence_set(b"1:*", limit=10)


# The mail Facteur keeps ---------------------------------------------------------


def test_body_text_is_the_plain_text_casefolded_on_one_line():
    assert body_text("Hello\n\n  WORLD, Straße\r\n", "<p>ignored</p>") == "hello world, strasse"


def test_body_text_of_html_alone_is_what_a_browser_shows():
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head>"
        "<body><p>Caf&eacute;&nbsp;<b>au</b> lait</p><script>var secret;</script>"
        "<div>menu</div></body></html>"
    )
    assert body_text(None, html) == "café au lait menu"


def test_body_text_is_bounded():
    assert len(body_text("word " * BODY_TEXT_CHARS, None)) == BODY_TEXT_CHARS
    assert body_text(None, None) == ""


# Header values from mail ---------------------------------------------------------


def test_a_hostile_header_value_is_one_quoted_string():
    assert header_keys([("Message-ID", '<a") ALL (x\\@y>')]) == [
        b"HEADER",
        b"Message-ID",
        b'"<a\\") ALL (x\\\\@y>"',
    ]


def test_values_no_header_can_hold_are_left_out():
    long = "<" + "x" * 1000 + ">"
    assert header_keys([("Message-ID", "<a\r\nA1 LOGOUT>"), ("Message-ID", long)]) == []
    assert header_keys([("Message-ID", "<nul\x00>"), ("References", "<ok@x>")]) == [
        b"HEADER",
        b"References",
        b'"<ok@x>"',
    ]


def test_many_values_make_a_shallow_balanced_or_without_parentheses():
    keys = header_keys([("Message-ID", f"<{n}@x>") for n in range(8)])
    assert keys.count(b"OR") == 7
    assert keys[:3] == [b"OR", b"OR", b"OR"]  # depth 3 for 8 values, not 7
    assert not any(key.startswith(b"(") for key in keys)


def test_an_eight_bit_value_goes_as_its_utf8_bytes():
    assert header_keys([("Message-ID", "<é@x>")])[2] == "<é@x>".encode()
