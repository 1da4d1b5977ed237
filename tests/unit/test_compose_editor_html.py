"""The editor's HTML as it is sent (clean_editor_html) and its text part (html_to_text)."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.unit.test_sanitize_corpus import XSS, corpus_params, parse_as_browser
from webmail.compose.editor_html import (
    ALLOWED_TAGS,
    clean_editor_html,
    html_to_text,
    text_to_editor_html,
)

#: What the editor (Trix 2) writes.
TRIX = (
    "<div>Hello <strong>Bob</strong>, <em>see</em> <del>this</del> "
    '<a href="https://example.test/a?b=1&amp;c=2">link</a><br><br>Second line</div>'
    "<h1>Title</h1><blockquote>A quote</blockquote><pre>  code\n    more</pre>"
    "<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol><div><br></div>"
)
ALLOWED_LINK_SCHEMES = ("http:", "https:", "mailto:")


def assert_editor_safe(html: str) -> None:
    body = parse_as_browser(html)
    for element in body.iter():
        if element is body:
            continue
        assert isinstance(element.tag, str), f"comment survived: {html!r}"
        assert element.tag in ALLOWED_TAGS, f"<{element.tag}> in {html!r}"
        for name, value in element.attrib.items():
            assert name in {"href", "type", "start", "colspan", "rowspan", "dir"}, (name, html)
            if name == "href":
                assert value.strip().lower().startswith(ALLOWED_LINK_SCHEMES), value


# --- clean_editor_html ------------------------------------------------------------------


def test_the_editors_markup_is_kept_as_it_is():
    assert clean_editor_html(TRIX) == TRIX


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<div>a<script>alert(1)</script>b</div>", "<div>ab</div>"),
        ("<style>div{}</style><div>a</div>", "<div>a</div>"),
        ('<div onclick="x()" class="c" style="color: red">a</div>', "<div>a</div>"),
        ('<a href="javascript:alert(1)">x</a>', "<a>x</a>"),
        ('<a href="jav&#x09;ascript:alert(1)">x</a>', "<a>x</a>"),
        ('<a href="/relative" target="_blank">x</a>', "<a>x</a>"),
        ('<a href="mailto:bob@example.test">Bob</a>', '<a href="mailto:bob@example.test">Bob</a>'),
        ('<img src="https://tracker.test/p.gif">x', "x"),
        ('<img src="data:image/png;base64,AAAA">x', "x"),
        ("<form><input value=secret><button>go</button></form>x", "x"),
        ("<iframe src=https://example.test></iframe>x", "x"),
        ("<svg><circle/></svg>x", "x"),
        ('<blockquote type="cite">q</blockquote>', '<blockquote type="cite">q</blockquote>'),
        ('<blockquote type="other">q</blockquote>', "<blockquote>q</blockquote>"),
        ("<h5>small</h5>", "<h3>small</h3>"),
        ("<section>a</section><center>b</center>", "<div>a</div><div>b</div>"),
        ("<font color=red>red</font>", "red"),
        ("<!-- comment -->a", "a"),
        ("  <div>a</div>\n", "<div>a</div>"),
    ],
)
def test_what_is_not_for_sending_goes(html, expected):
    assert clean_editor_html(html) == expected


def test_tables_of_a_quoted_message_keep_their_cells():
    html = '<table width="600" style="x"><tr><td colspan="2" bgcolor="red">a</td></tr></table>'
    assert clean_editor_html(html) == (
        '<table><tbody><tr><td colspan="2">a</td></tr></tbody></table>'
    )


def test_a_greater_than_sign_in_a_link_stays_inside_its_value():
    cleaned = clean_editor_html('<a href="https://example.test/?a=>&b=1">x</a>')
    (link,) = parse_as_browser(cleaned).iter("a")
    assert link.get("href") == "https://example.test/?a=>&b=1"


@pytest.mark.parametrize(
    "html",
    [
        TRIX,
        "<p>a<p>b<div>c</div>",
        "<p><font><p>nested</p></font></p>",
        "<table><tr><td><table><tr><td>x</td></tr></table></td></tr></table>",
        "<ul><li>a<ul><li>b</li></ul></li></ul>",
        "<a href=https://x.test><div>block in link</div></a>",
        "<pre>\n\nleading newlines</pre>",
        "<b><i>mis</b>nested</i>",
        "<blockquote>" * 300 + "deep",
        "x &amp;&lt;&gt; &notanentity &#0; &#x110000;",
    ],
)
def test_cleaning_again_changes_nothing(html):
    once = clean_editor_html(html)
    assert clean_editor_html(once) == once


def vectors():
    return json.loads((XSS / "vectors.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", corpus_params(vectors, lambda v: v["id"]))
def test_xss_vectors_leave_only_the_allowlist(vector):
    once = clean_editor_html(vector["payload"])
    assert_editor_safe(once)
    assert clean_editor_html(once) == once
    html_to_text(vector["payload"])


# --- text_to_editor_html ----------------------------------------------------------------


def test_a_text_becomes_lines_quotes_and_links():
    html = text_to_editor_html("Hello <b>\n\nsee https://example.test/a?b&c\n> quoted\n>> deeper")
    assert html == (
        "<div>Hello &lt;b&gt;<br><br>see "
        '<a href="https://example.test/a?b&amp;c">https://example.test/a?b&amp;c</a>'
        '<blockquote type="cite">quoted<blockquote type="cite">deeper</blockquote></blockquote>'
        "</div>"
    )
    assert clean_editor_html(html) == html


# --- html_to_text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        # The editor: a block per line, <br><br> for an empty line.
        ("<div>text<br><br>more</div>", "text\n\nmore"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("<div>a</div><div><br></div><div>b</div>", "a\n\nb"),
        ("<div>a<br></div><div>b</div>", "a\nb"),
        ("<div>a<br><br><br><br>b</div>", "a\n\nb"),
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<div>  spaced \n  out   words </div>", "spaced out words"),
        ("<div>a&nbsp;&nbsp; b</div>", "a   b"),
        (
            "<div>&lt;tag&gt; &amp; &eacute;t&eacute; &#x263A; &amp;amp;</div>",
            "<tag> & été ☺ &amp;",
        ),
        ("<div>x <strong>bold</strong> <em>it</em>.</div>", "x bold it."),
        # Lists.
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ("<ol><li>one</li><li>two</li></ol>", "1. one\n2. two"),
        ('<ol start="9"><li>nine</li><li>ten</li></ol>', "9. nine\n10. ten"),
        (
            "<ul><li>a<ul><li>a1</li><li>a2<ol><li>deep</li></ol></li></ul></li><li>b</li></ul>",
            "- a\n  - a1\n  - a2\n    1. deep\n- b",
        ),
        ("<ul><li><p>para one</p><p>para two</p></li></ul>", "- para one\n\n  para two"),
        ("<div>Intro</div><ul><li>x</li></ul><div>After</div>", "Intro\n- x\nAfter"),
        # Quotes.
        ("<div>Hi</div><blockquote>quoted</blockquote><div>after</div>", "Hi\n\n> quoted\n\nafter"),
        (
            "<blockquote><div>a</div><blockquote><div>b</div></blockquote><div>c</div></blockquote>",
            "> a\n>\n>> b\n>\n> c",
        ),
        ("<blockquote>a<br><br>b</blockquote>", "> a\n>\n> b"),
        ("<blockquote><ul><li>item</li></ul></blockquote>", "> - item"),
        ("<blockquote><pre>  code</pre></blockquote>", ">   code"),
        # Links.
        ('<a href="https://example.test/">https://example.test</a>', "https://example.test"),
        (
            '<a href="https://example.test/page">the page</a>',
            "the page <https://example.test/page>",
        ),
        ('<a href="mailto:bob@example.test">bob@example.test</a>', "bob@example.test"),
        ('<a href="mailto:bob@example.test">Bob</a>', "Bob <bob@example.test>"),
        (
            '<a href="https://example.test/x?a=1&amp;b=2">x</a>',
            "x <https://example.test/x?a=1&b=2>",
        ),
        ('<a href="https://example.test/e"></a>', "https://example.test/e"),
        ('<a href="javascript:alert(1)">click</a>', "click"),
        ('<a href="/relative">here</a>', "here"),
        # Headings, rules, pre.
        ("<h1>Title</h1><div>text</div>", "Title\n\ntext"),
        ("<div>a</div><hr><div>b</div>", "a\n\n" + "-" * 20 + "\n\nb"),
        ("<pre>  indented\n\tTab   \n\nx</pre>", "  indented\n\tTab\n\nx"),
        ("<pre>\nfirst</pre>", "first"),
        ("<pre><code>a  b</code></pre>", "a  b"),
        # The signature separator keeps its space.
        ("<div>Bye<br><br>-- <br>Alice</div>", "Bye\n\n-- \nAlice"),
        ("<div>--&nbsp;<br>Alice</div>", "-- \nAlice"),
        # What is never shown.
        ("<style>p{}</style><script>x()</script><div>seen</div>", "seen"),
        ("<head><title>T</title></head><body><p>body</p></body>", "body"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("", ""),
        ("<div><br></div><div><br></div>", ""),
    ],
)
def test_html_to_text(html, text):
    assert html_to_text(html) == text


def test_no_line_ends_with_a_space_and_no_two_empty_lines_follow():
    text = html_to_text(
        "<div>a  <br>  <br>  <br>b </div><p> </p><p></p><blockquote><div><br></div>"
        "<div><br></div>q</blockquote><div><br></div><div><br></div>end"
    )
    lines = text.split("\n")
    assert all(line == line.rstrip() for line in lines)
    blank = [not line.replace(">", "").strip() for line in lines]
    assert not any(a and b for a, b in itertools.pairwise(blank))
    assert text == "a\n\nb\n\n> q\n\nend"


def test_deeply_nested_markup_does_not_exhaust_the_stack():
    text = html_to_text("<blockquote>" * 5000 + "deep" + "<ul><li>" * 5000)
    assert "deep" in text
