"""Sanitising one message stops at its CPU budget; the message is then shown as text."""

from __future__ import annotations

import pytest

from webmail.mime import parse_message
from webmail.reading import safe_body
from webmail.sanitize import Budget, OverBudget, markup_text, sanitize_html

HTML = "<p>Hello <b>there</b></p>" * 500


def test_a_spent_budget_stops_sanitising():
    with pytest.raises(OverBudget):
        sanitize_html(HTML, budget=Budget(0))


def test_a_budget_leaves_honest_mail_alone():
    assert sanitize_html(HTML, budget=Budget(60)).html == sanitize_html(HTML).html


def test_markup_text_keeps_the_text_only():
    assert markup_text("<p>Caf&eacute; <<b>x</b> &lt;y&gt;") == "Café <x <y>"
    hidden = "<head><title>T</title><style>p {}</style></head><script>s</script>Shown"
    assert markup_text(hidden) == "Shown"
    assert markup_text("<head><title>Unclosed<body>Text") == "Text"


def _message(html: str, text: str | None = None) -> bytes:
    head = "From: a@example.org\r\nSubject: s\r\n"
    if text is None:
        return f"{head}Content-Type: text/html; charset=utf-8\r\n\r\n{html}".encode()
    return (
        f'{head}Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b--\r\n"
    ).encode()


def test_over_budget_the_text_version_is_shown(settings):
    settings.MAIL_SANITIZE_SECONDS = 0
    body = safe_body(
        parse_message(_message(HTML, "Plain <words> http://example.com/")),
        cid_url=lambda cid: None,
        allow_remote=False,
    )
    assert body.over_budget
    assert "Plain &lt;words&gt;" in body.html
    assert 'href="http://example.com/"' in body.html
    assert "<b>" not in body.html


def test_over_budget_without_a_text_version_the_htmls_text_is_shown(settings):
    settings.MAIL_SANITIZE_SECONDS = 0
    body = safe_body(
        parse_message(_message(HTML + "<script>alert(1)</script>")),
        cid_url=lambda cid: None,
        allow_remote=False,
    )
    assert body.over_budget and "Hello there" in body.html
    assert "<script>" not in body.html and "<b>" not in body.html
