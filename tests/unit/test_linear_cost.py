"""Every function that reads message content costs work in proportion to its input.

Each case times a function on its worst known input at size n and at 4n (CPU
time of this thread, the best of a few runs) and requires the ratio to stay
under 10: linear work gives about 4, quadratic about 16. Nothing here compares
a time with a fixed number of seconds.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest

from webmail.compose import prefill, quoting
from webmail.compose.editor_html import clean_editor_html, html_to_text, text_to_editor_html
from webmail.mime import ParsedMessage, decode_header, parse_addresses, parse_message
from webmail.sanitize import markup_text, plain_text_to_html, sanitize_html
from webmail.sanitize.css import _sanitize as sanitize_style
from webmail.search import SearchForm, body_text, imap_criteria, split_words
from webmail.threads import base_subject, read_headers, reference_ids

#: Growth allowed when the input grows fourfold.
MAX_RATIO = 10
RUNS = 3
ATTEMPTS = 3


def _cost(function: Callable[[object], object], argument: object) -> float:
    best = float("inf")
    # As timeit does: a collection would land in one run and not the other.
    gc.collect()
    gc.disable()
    try:
        for _ in range(RUNS):
            started = time.thread_time()
            function(argument)
            best = min(best, time.thread_time() - started)
    finally:
        gc.enable()
    return max(best, 1e-4)


def assert_linear(function: Callable[[object], object], make: Callable[[int], object], n: int):
    small, large = make(n), make(4 * n)
    function(small)  # warm caches and imports
    # A shared machine can slow one measurement; quadratic work is over the
    # bound at every attempt, so the best of a few counts.
    ratio = float("inf")
    for _attempt in range(ATTEMPTS):
        ratio = min(ratio, _cost(function, large) / _cost(function, small))
        if ratio < MAX_RATIO:
            break
    assert ratio < MAX_RATIO, f"work grew {ratio:.1f} times for 4 times the input"


def _message(headers: str, body: str, content_type: str = "text/plain") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n{headers}"
        f"Content-Type: {content_type}; charset=utf-8\r\n\r\n{body}"
    ).encode()


def _multipart(parts: list[str], headers: str = "") -> bytes:
    body = "".join(f"--b\r\n{part}\r\n" for part in parts) + "--b--\r\n"
    return _message(headers, body, 'multipart/mixed; boundary="b"').replace(
        b"; charset=utf-8", b"", 1
    )


def _nested(depth: int) -> bytes:
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    return _message("", opening, 'multipart/mixed; boundary="top"')


# Sanitising HTML.

HTML_CASES = {
    "blanks in a data: URL": lambda n: f'<img src="data:image/png;base64,AA{" " * n}!">',
    "closing brackets in text": lambda n: "http://example.com/" + ")" * n,
    "deep nesting": lambda n: "<div><b>" * (n // 8) + "x",
    "many attributes": lambda n: "<p " + 'a="v" ' * (n // 6) + ">x</p>",
    "text in a table": lambda n: "<table>" + "<tr>t<td>x</td>m" * (n // 16),
    "unclosed comment": lambda n: "<!--" + "<a href='" * (n // 9),
    "long character references": lambda n: "&#x" + "0" * n + "41;" + "&amp" * (n // 4),
    "nested CSS functions": lambda n: '<p style="color: ' + "rgb(" * (n // 4) + '">x</p>',
    "many CSS declarations": lambda n: '<p style="' + "color: red;" * (n // 11) + '">x</p>',
    "many style attributes": lambda n: '<p style="color: red">x</p>' * (n // 26),
    "long attribute value": lambda n: '<a title="' + "x" * n + '">y</a>',
    "unclosed tags": lambda n: "<a" * (n // 2),
}


@pytest.mark.parametrize("case", HTML_CASES)
def test_sanitising_html_is_linear(case):
    assert_linear(sanitize_html, HTML_CASES[case], 5_000)


def test_a_long_style_attribute_is_linear():
    assert_linear(sanitize_style, lambda n: "color: " + "(" * n, 4_000)
    assert_linear(sanitize_style, lambda n: "a: b; " * (n // 6), 4_000)


# Plain text to HTML: links, brackets, quoting.

TEXT_CASES = {
    "closing brackets after a link": lambda n: "http://example.com/x" + ")" * n,
    "alternating punctuation after a link": lambda n: "http://example.com/x" + ").]," * (n // 4),
    "brackets of every kind": lambda n: "www.example.com/" + ")]}" * (n // 3),
    "dotted words before an at sign": lambda n: "a." * (n // 2) + "@",
    "many at signs": lambda n: "x@" * (n // 2),
    "www. repeated": lambda n: "www." * (n // 4),
    "quote markers": lambda n: "> " * (n // 2) + "text",
    "many short lines": lambda n: "> a\n" * (n // 4),
    "long mailto": lambda n: "mailto:" + "a" * n,
}


@pytest.mark.parametrize("case", TEXT_CASES)
def test_text_to_html_is_linear(case):
    assert_linear(plain_text_to_html, TEXT_CASES[case], 20_000)


def test_markup_text_is_linear():
    assert_linear(markup_text, lambda n: "<" * n, 100_000)
    assert_linear(markup_text, lambda n: "<a>&amp;" * (n // 8), 100_000)


# Parsing messages: headers, addresses, parameters, parts.

MESSAGE_CASES = {
    "RFC 2231 continuations": lambda n: _multipart(
        [
            'Content-Type: application/octet-stream; name="' + '\\"x' * 3_000 + '"\r\n'
            "Content-Disposition: attachment"
            + "".join(f"; filename*{i}*=utf-8''%41%5C%22bbbb" for i in range(50))
            + "\r\n\r\ndata"
        ]
        * (n // 1_000)
    ),
    "many parts": lambda n: _multipart(["Content-Type: text/plain\r\n\r\nx"] * (n // 40)),
    "deep MIME nesting": lambda n: _nested(n // 60),
    "long folded subject": lambda n: _message(
        "X-Long: " + "\r\n ".join(["word"] * (n // 7)) + "\r\n", "x"
    ),
    "many addresses": lambda n: _message(
        "Cc: " + ",\r\n ".join(f'"N {i}" <p{i}@example.org>' for i in range(n // 30)) + "\r\n",
        "x",
    ),
    "many encoded words": lambda n: _message(
        "X-Words: " + "=?utf-8?q?caf=C3=A9?= " * (n // 22) + "\r\n", "x"
    ),
    "many References": lambda n: _message(
        "References: " + " ".join(f"<{i}@example.org>" for i in range(n // 20)) + "\r\n", "x"
    ),
    "one long text line": lambda n: _message("", "word " * (n // 5)),
    "base64 with junk": lambda n: _message(
        "Content-Transfer-Encoding: base64\r\n", "QUJD!!" * (n // 6)
    ),
}


@pytest.mark.parametrize("case", MESSAGE_CASES)
def test_parsing_messages_is_linear(case):
    assert_linear(parse_message, MESSAGE_CASES[case], 25_000)


def test_headers_and_addresses_are_linear():
    assert_linear(decode_header, lambda n: "=?utf-8?q?a?= " * (n // 14), 20_000)
    assert_linear(decode_header, lambda n: "=?" * (n // 2), 20_000)
    assert_linear(parse_addresses, lambda n: "a, " * (n // 3), 20_000)
    assert_linear(parse_addresses, lambda n: '"' + "\\" * n, 20_000)
    assert_linear(parse_addresses, lambda n: "(" * n, 20_000)
    assert_linear(parse_addresses, lambda n: "<" * n + "a@b", 20_000)


# Threading, search, replies and forwards.


def test_threading_is_linear():
    assert_linear(lambda s: reference_ids(s, s), lambda n: "<a@b> " * (n // 6), 50_000)
    assert_linear(lambda s: reference_ids(s, s), lambda n: "<" * n, 50_000)
    headers = lambda n: _message("References: " + "(" * n + "\r\n", "x")  # noqa: E731
    assert_linear(lambda raw: read_headers(1, raw), headers, 20_000)
    assert_linear(base_subject, lambda n: "Re: " * (n // 4) + "x", 20_000)
    assert_linear(base_subject, lambda n: "[a] " * (n // 4) + "x", 20_000)
    assert_linear(base_subject, lambda n: "[" * n + "re:", 20_000)
    assert_linear(base_subject, lambda n: "x" + " (fwd)" * (n // 6), 20_000)
    assert_linear(base_subject, lambda n: "[fwd: " * (n // 6) + "x" + "]" * (n // 6), 20_000)


def test_search_criteria_are_linear():
    assert_linear(split_words, lambda n: '"' * n, 50_000)
    assert_linear(split_words, lambda n: 'a "b' * (n // 4), 50_000)

    def criteria(text: str) -> list[bytes]:
        form = SearchForm({"q": text})
        return imap_criteria(form.query()) if form.is_valid() else []

    assert_linear(criteria, lambda n: "word " * (n // 5), 2_000)


SEARCH_TEXT_CASES = {
    "unclosed attributes": lambda n: "<a b='" * (n // 6),
    "unclosed comments": lambda n: "<!--" * (n // 4),
    "unclosed CDATA": lambda n: "<![CDATA[" * (n // 9),
    "end tag openings": lambda n: "</" * (n // 2),
    "processing instructions": lambda n: "<?" * (n // 2),
    "hidden elements": lambda n: "<script>" * (n // 8),
    "ordinary markup": lambda n: "<p>word &amp; <b>word</b></p>" * (n // 29),
}


@pytest.mark.parametrize("case", SEARCH_TEXT_CASES)
def test_the_text_a_search_reads_is_linear(case):
    assert_linear(lambda html: body_text(None, html), SEARCH_TEXT_CASES[case], 50_000)


def _parsed(text: str) -> ParsedMessage:
    return parse_message(_message("", text))


def test_quoting_a_message_is_linear():
    assert_linear(quoting.quote_text, lambda n: _parsed("> a\n" * (n // 4)), 100_000)
    assert_linear(quoting.quote_html, lambda n: _parsed("http://x/" + ")" * n), 50_000)
    assert_linear(prefill.references, lambda n: parse_message(_message(
        "References: " + " ".join(f"<{i}@x>" for i in range(n // 8)) + "\r\n", "x"
    )), 50_000)  # fmt: skip


EDITOR_CASES = {
    "nested quotes to text": (html_to_text, lambda n: "<blockquote>" * (n // 12) + "x"),
    "lines in a deep quote to text": (
        html_to_text,
        lambda n: "<blockquote>" * 50 + "a<br>" * (n // 5),
    ),
    "many links to text": (html_to_text, lambda n: '<a href="http://x/">y</a>' * (n // 24)),
    "nested lists to text": (html_to_text, lambda n: "<ul><li>" * (n // 8) + "x"),
    "quoted text to editor HTML": (text_to_editor_html, lambda n: "> a\n" * (n // 4)),
    "deep editor HTML": (clean_editor_html, lambda n: "<div><b>" * (n // 8)),
}


@pytest.mark.parametrize("case", EDITOR_CASES)
def test_replying_and_forwarding_is_linear(case):
    function, make = EDITOR_CASES[case]
    assert_linear(function, make, 10_000)


# The caps that keep some of the above linear, and what they keep.


def test_a_style_attribute_past_its_cap_is_dropped_whole():
    from webmail.sanitize.css import MAX_STYLE_CHARS

    honest = "color: red; " * 10
    assert sanitize_style(honest)[0].startswith("color: red")
    assert sanitize_style("color: red; " * (MAX_STYLE_CHARS // 10)) == ("", False)
    assert sanitize_style("color: " + "(" * 17 + ")" * 17) == ("", False)


def test_threading_compares_the_beginning_of_long_subjects():
    from webmail.threads import MAX_SUBJECT_CHARS

    long = "x" * MAX_SUBJECT_CHARS
    assert base_subject("Re: " + long + "a") == (long[: MAX_SUBJECT_CHARS - 4], True)
    assert base_subject(long + "a")[0] == base_subject(long + "b")[0]
    assert base_subject("Re: [list] Fwd: Subject (fwd)") == ("subject", True)
