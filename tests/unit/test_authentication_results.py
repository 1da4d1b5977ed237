"""Authentication-Results (RFC 8601): parsing, and when the office's server vouches for a From."""

from __future__ import annotations

import sys

import pytest

from webmail.mime import authresults
from webmail.mime.authresults import (
    MAX_FIELD_CHARS,
    MAX_FIELDS,
    MethodResult,
    own_server_vouches,
    parse_authentication_results,
)

OWN = "mx.office.test"


def test_a_field_is_read_into_its_server_and_results():
    parsed = parse_authentication_results(
        "MX.Office.test 1; spf=pass smtp.mailfrom=example.org;\r\n"
        " dkim=pass (good signature) header.d=example.org header.s=s1;\r\n"
        " dmarc=pass (p=reject dis=none) header.from=example.org"
    )
    assert parsed.authserv_id == OWN
    assert parsed.results == (
        MethodResult("spf", "pass", {"smtp.mailfrom": "example.org"}),
        MethodResult("dkim", "pass", {"header.d": "example.org", "header.s": "s1"}),
        MethodResult("dmarc", "pass", {"header.from": "example.org"}),
    )


def test_comments_quotes_versions_and_none_are_read_as_rfc_8601_says():
    parsed = parse_authentication_results(
        '(head (nested) comment) "mx.office.test" ; dkim/1 = Pass reason="a; b=c" '
        'header.d="example.org" (trailing) ; none'
    )
    assert parsed.authserv_id == OWN
    assert parsed.results == (MethodResult("dkim", "pass", {"header.d": "example.org"}),)
    assert parse_authentication_results("mx.office.test; none").results == ()


def test_a_quoted_semicolon_or_equals_is_a_value_never_syntax():
    parsed = parse_authentication_results(
        'mx.office.test; spf=pass smtp.mailfrom=";" ; dmarc="=" header.from=example.org'
    )
    assert parsed.results[0] == MethodResult("spf", "pass", {"smtp.mailfrom": ";"})
    assert parsed.results[1].result == "="


@pytest.mark.parametrize("value", ["", "   ", "(only a comment)", "= dkim=pass", ";;;"])
def test_a_field_without_a_server_name_is_nothing(value):
    parsed = parse_authentication_results(value)
    assert parsed is None or parsed.results == ()


def vouches(*fields: str, domain: str = "example.org", authserv_id: str = OWN) -> bool:
    return own_server_vouches(list(fields), authserv_id, domain)


def test_dmarc_pass_for_the_from_domain_vouches():
    assert vouches(f"{OWN}; dmarc=pass header.from=example.org")
    assert vouches(f"{OWN}; dmarc=pass header.from=EXAMPLE.org", domain="example.org.")


def test_dmarc_pass_for_another_domain_or_a_failure_does_not():
    assert not vouches(f"{OWN}; dmarc=pass header.from=attacker.example")
    assert not vouches(f"{OWN}; dmarc=fail header.from=example.org")
    assert not vouches(f"{OWN}; dmarc=none header.from=example.org")
    # A DMARC result decides: an aligned DKIM pass beside a DMARC failure is no pass.
    assert not vouches(f"{OWN}; dkim=pass header.d=example.org; dmarc=fail header.from=example.org")


def test_without_dmarc_an_aligned_dkim_signature_vouches():
    assert vouches(f"{OWN}; dkim=pass header.d=example.org")
    assert vouches(f"{OWN}; dkim=pass header.d=example.org", domain="news.example.org")
    assert not vouches(f"{OWN}; dkim=pass header.d=example.org", domain="badexample.org")
    assert not vouches(f"{OWN}; dkim=pass header.d=news.example.org", domain="example.org")
    assert not vouches(f"{OWN}; dkim=pass header.d=org")
    assert not vouches(f"{OWN}; dkim=fail header.d=example.org")
    assert not vouches(f"{OWN}; spf=pass smtp.mailfrom=example.org")


def test_fields_of_other_servers_are_ignored_as_forgeable():
    forged = "mx.attacker.example; dmarc=pass header.from=example.org"
    assert not vouches(forged)
    assert vouches(forged, f"{OWN}; dmarc=pass header.from=example.org")


def test_the_topmost_field_of_the_own_server_decides():
    """The server adds its own on top; one lower down bearing its name came with the mail."""
    genuine = f"{OWN}; dmarc=fail header.from=example.org"
    forged_below = f"{OWN}; dmarc=pass header.from=example.org"
    assert not vouches(genuine, forged_below)


def test_without_a_configured_server_nothing_vouches():
    assert not vouches(f"{OWN}; dmarc=pass header.from=example.org", authserv_id="")
    assert not vouches(f"{OWN}; dmarc=pass header.from=example.org", domain="")


def test_only_the_first_fields_are_read():
    others = ["elsewhere.example; none"] * MAX_FIELDS
    assert not vouches(*others, f"{OWN}; dmarc=pass header.from=example.org")
    assert vouches(*others[:-1], f"{OWN}; dmarc=pass header.from=example.org")


def test_a_field_is_read_up_to_its_cap():
    padding = "x" * MAX_FIELD_CHARS
    assert not vouches(
        f"{OWN}; spf=none smtp.mailfrom={padding}; dmarc=pass header.from=example.org"
    )


def lines_run(value: str) -> int:
    """Lines of the parser run for ``value``: its work, counted rather than timed."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != authresults.__file__:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        parse_authentication_results(value)
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize(
    "unit",
    ["(", "((((", '"', "\\", "a=", "=;", "dkim=pass header.d=x.y ", "(\\)", " ", "a"],
)
def test_parsing_grows_linearly_with_the_field(unit):
    """Four times the field, at most about four times the work; past the cap, no more."""

    def work(length: int) -> int:
        return lines_run(f"{OWN}; " + unit * (length // len(unit)))

    small, large = work(MAX_FIELD_CHARS // 8), work(MAX_FIELD_CHARS // 2)
    assert large <= 4.5 * small
    assert work(MAX_FIELD_CHARS * 50) <= work(MAX_FIELD_CHARS) * 1.01
