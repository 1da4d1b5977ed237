"""What sanitising keeps, rewrites and removes, and how plain text becomes HTML."""

from __future__ import annotations

import random
import threading

import pytest

from tests.unit.test_sanitize_corpus import assert_safe_html, parse_as_browser
from webmail.sanitize import SanitizedHtml, parser, plain_text_to_html, sanitize_html


def clean(html: str, **kwargs) -> str:
    return sanitize_html(html, **kwargs).html


def only(fragment: str, tag: str):
    """The single element named ``tag`` in the sanitised fragment."""
    (element,) = parse_as_browser(fragment).iter(tag)
    return element


# --- harmless markup survives -------------------------------------------------------


def test_table_layout_with_presentational_attributes_survives():
    html = (
        '<table width="600" border="0" cellpadding="4" cellspacing="0" bgcolor="#f4f4f4" '
        'align="center"><tr valign="top"><td colspan="2" rowspan="1" align="right" '
        'nowrap width="50%" height="20" bgcolor="#fff">cell</td></tr></table>'
    )
    out = clean(html)
    table, td = only(out, "table"), only(out, "td")
    assert table.attrib == {
        "width": "600",
        "border": "0",
        "cellpadding": "4",
        "cellspacing": "0",
        "bgcolor": "#f4f4f4",
        "align": "center",
    }
    assert only(out, "tr").get("valign") == "top"
    assert td.get("colspan") == "2"
    assert td.get("align") == "right"
    assert "nowrap" in td.attrib
    assert td.text == "cell"


def test_fonts_colours_and_text_markup_survive():
    html = (
        '<font color="red" face="Georgia, serif" size="4">big</font> <b>b</b> <i>i</i> '
        "<u>u</u> <s>s</s> <sub>2</sub><sup>3</sup> <center>c</center> <h2>t</h2>"
        '<ul><li>one</li></ul><ol start="3"><li>three</li></ol><blockquote>q</blockquote>'
        "<pre>  code</pre><hr><br><span>x</span><div>y</div><p>z</p>"
    )
    out = clean(html)
    font = only(out, "font")
    assert font.attrib == {"color": "red", "face": "Georgia, serif", "size": "4"}
    for tag in ("b", "i", "u", "s", "sub", "sup", "center", "h2", "ul", "ol", "li",
                "blockquote", "pre", "hr", "br", "span", "div", "p"):  # fmt: skip
        assert parse_as_browser(out).find(f".//{tag}") is not None, tag
    assert only(out, "ol").get("start") == "3"
    assert only(out, "pre").text == "  code"


def test_allowed_css_is_kept_and_written_out_again():
    out = clean(
        "<p style=\"COLOR: #333; font-family: 'Helvetica Neue', Arial; "
        'font-size:14px;margin:0 0 8px 0; background-color: rgb(1, 2, 3) !important">x</p>'
    )
    assert only(out, "p").get("style") == (
        'color: #333; font-family: "Helvetica Neue", Arial; font-size: 14px; '
        "margin: 0 0 8px 0; background-color: rgb(1, 2, 3) !important"
    )


def test_css_escapes_are_decoded_and_comments_dropped():
    # A CJK font name written with CSS escapes, as Chinese mail clients do.
    out = clean('<p style="font-family: \\5B8B\\4F53; color: /* note */ red">x</p>')
    assert only(out, "p").get("style") == "font-family: 宋体; color: red"


@pytest.mark.parametrize(
    "declaration",
    [
        "position: fixed",
        "position: absolute !important",
        "z-index: 99",
        "top: 0",
        "display: flex",
        "width: expression(alert(1))",
        "background-image: url(http://example.com/x.png)",
        "background: url(cid:logo)",
        "list-style: url(http://example.com/dot.png)",
        "behavior: url(x.htc)",
        "-moz-binding: url(x.xml#y)",
        "color: var(--x)",
        "content: 'x'",
        "width: calc(100% - 1px)",
    ],
)
def test_disallowed_css_is_dropped(declaration):
    out = clean(f'<p style="color: red; {declaration}">x</p>')
    assert only(out, "p").get("style") == "color: red"


def test_display_none_kept_for_preheaders():
    out = clean('<div style="display:none; max-height:0; overflow:hidden">preview</div>')
    assert only(out, "div").get("style") == "display: none; max-height: 0; overflow: hidden"


def test_character_references_in_style_are_read_as_the_browser_reads_them():
    # &#59; is a semicolon to the browser: the second declaration must be seen.
    out = clean('<p style="color:red&#59;background-image:url(http://example.com/x)">x</p>')
    assert only(out, "p").get("style") == "color: red"


# --- links ----------------------------------------------------------------------------


def test_links_open_in_a_new_tab_without_opener_or_referrer():
    out = clean('<a href="https://example.com/a?b=1&amp;c=2" target="_self" rel="opener">x</a>')
    a = only(out, "a")
    assert a.attrib == {
        "href": "https://example.com/a?b=1&c=2",
        "target": "_blank",
        "rel": "noopener noreferrer",
    }


def test_mailto_links_are_kept():
    a = only(clean('<a href="mailto:someone@example.com?subject=Hi">mail</a>'), "a")
    assert a.get("href") == "mailto:someone@example.com?subject=Hi"


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " \tjava\nscript:alert(1)",
        "&#106;avascript:alert(1)",
        "&#x6A;avascript&colon;alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "//evil.example/",
        "/logout",
        "#top",
        "ftp://example.com/",
    ],
)
def test_other_links_lose_their_href_but_keep_their_text(href):
    a = only(clean(f'<a href="{href}">text</a>'), "a")
    assert "href" not in a.attrib
    assert a.text == "text"


# --- images and remote content --------------------------------------------------------


def test_cid_images_point_at_the_message_part():
    seen = []

    def cid_url(content_id):
        seen.append(content_id)
        return f"/parts/{content_id}?x=1&y=2"

    out = clean('<img src="cid:logo@example.com" alt="Logo">', cid_url=cid_url)
    assert seen == ["logo@example.com"]
    assert only(out, "img").attrib == {"src": "/parts/logo@example.com?x=1&y=2", "alt": "Logo"}


def test_cid_is_unquoted_and_loses_angle_brackets():
    seen = []
    clean('<img src="CID:%3Cpart1.abc%40example.com%3E">', cid_url=seen.append)
    assert seen == ["part1.abc@example.com"]


def test_unknown_cid_loses_its_source():
    img = only(clean('<img src="cid:missing" alt="gone">', cid_url=lambda cid: None), "img")
    assert img.attrib == {"alt": "gone"}


def test_cid_background_of_a_table_cell_is_rewritten():
    out = clean(
        '<table><tr><td background="cid:bg">x</td></tr></table>',
        cid_url=lambda content_id: f"/parts/{content_id}",
    )
    assert only(out, "td").get("background") == "/parts/bg"


def test_remote_images_are_blocked_and_reported():
    result = sanitize_html('<img src="https://tracker.example/open.gif" width="1" alt="">')
    assert result == SanitizedHtml(html='<img width="1" alt="">', remote_blocked=True)


def test_remote_images_are_kept_when_allowed():
    result = sanitize_html('<img src="https://cdn.example/logo.png">', allow_remote=True)
    assert result.html == '<img src="https://cdn.example/logo.png">'
    assert result.remote_blocked is False


def test_remote_background_attribute_is_blocked_then_allowed():
    html = '<table background="http://cdn.example/bg.jpg"><tr><td>x</td></tr></table>'
    blocked = sanitize_html(html)
    assert "background" not in only(blocked.html, "table").attrib
    assert blocked.remote_blocked
    allowed = sanitize_html(html, allow_remote=True)
    assert only(allowed.html, "table").get("background") == "http://cdn.example/bg.jpg"


def test_remote_css_is_reported_but_never_kept():
    html = '<div style="background: url(https://cdn.example/bg.jpg); color: red">x</div>'
    assert sanitize_html(html).remote_blocked
    allowed = sanitize_html(html, allow_remote=True)
    assert "url(" not in allowed.html
    assert allowed.remote_blocked is False


def test_remote_css_is_reported_for_every_message():
    # Style attributes are remembered between messages; the report must not be.
    html = '<div style="background-image: url(https://tracker.example/x.gif)">x</div>'
    assert [sanitize_html(html).remote_blocked for _ in range(2)] == [True, True]


def test_no_remote_content_no_report():
    assert sanitize_html('<p><a href="https://example.com">link</a></p>').remote_blocked is False


def test_raster_data_images_are_kept():
    src = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
        "DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
    )
    assert only(clean(f'<img src="{src}">'), "img").get("src") == src


@pytest.mark.parametrize(
    "src",
    [
        "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
        "data:image/svg+xml,<svg onload=alert(1)>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "data:image/png,not-base64",
        "data:image/png;base64,<script>",
        "javascript:alert(1)",
        "/relative.png",
    ],
)
def test_other_image_sources_are_dropped(src):
    assert "src" not in only(clean(f'<img src="{src}" alt="x">'), "img").attrib


def test_srcset_and_other_image_attributes_are_dropped():
    html = '<img src="cid:a" srcset="http://e.example/x 2x" lowsrc="x" dynsrc="y">'
    img = only(clean(html, cid_url=lambda content_id: f"/parts/{content_id}"), "img")
    assert img.attrib == {"src": "/parts/a"}


# --- what goes away -------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        "<style>p { color: red }</style>",
        "<svg><circle r=1 /><text>svg text</text></svg>",
        "<math><mi>x</mi></math>",
        "<noscript>no script</noscript>",
        "<iframe src=x>frame</iframe>",
        "<object data=x>object</object>",
        "<template><p>template</p></template>",
        "<textarea>area</textarea>",
        "<select><option>opt</option></select>",
        "<title>Title</title>",
        "<!-- comment --><!--[if mso]><p>outlook</p><![endif]-->",
    ],
)
def test_active_and_hidden_content_goes_with_its_text(html):
    assert clean(f"before{html}after") == "beforeafter"


def test_unknown_and_form_elements_are_unwrapped():
    out = clean("<form action=x><fieldset><x-widget>kept</x-widget></fieldset></form>")
    assert out == "kept"


def test_a_whole_document_becomes_a_body_fragment():
    html = (
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>T</title>"
        "<link rel=stylesheet href=x.css><base href=http://evil.example/>"
        "<style>body{}</style></head><body bgcolor=white><p>Hello</p></body></html>"
    )
    assert clean(html) == "<p>Hello</p>"


def test_event_handlers_and_unknown_attributes_are_dropped():
    out = clean('<p onclick="x()" id="a" class="b" data-x="c" onmouseover=y() title="t">p</p>')
    assert out == '<p title="t">p</p>'


def test_text_is_escaped():
    out = clean("1 &lt; 2 &amp; <b>3 &gt; 2</b> &copy; AT&T")
    assert parse_as_browser(out).find("b").text == "3 > 2"
    assert out == "1 &lt; 2 &amp; <b>3 &gt; 2</b> &copy; AT&amp;T"


# --- robustness -----------------------------------------------------------------------


def test_empty_input():
    assert sanitize_html("") == SanitizedHtml(html="", remote_blocked=False)


def test_sanitising_twice_changes_nothing():
    html = (
        "<p><button><p>x</button>"
        "<table><tr><td>cell<p>text</table>"
        '<a href="https://a.example/?q=1&amp;r=&quot;2&quot;" title=">">t</a>'
        "<p style=\"font-family: 'A&amp;B'\">f</p><li><fieldset><li>y"
    )
    once = clean(html)
    assert clean(once) == once


def test_leading_newlines_of_pre_survive_another_parse():
    out = clean("<pre>\n\nindented\n</pre>")
    assert only(out, "pre").text == "\nindented\n"
    assert clean(out) == out


def test_lone_surrogates_become_replacement_characters():
    assert clean('a\udc80<p title="\ud800">b</p>') == 'a\ufffd<p title="\ufffd">b</p>'


def test_results_are_bounded_by_max_bytes():
    result = sanitize_html("<p>" + "a" * 1000 + "</p>", max_bytes=100)
    assert result.truncated
    assert result.html == "<p>" + "a" * 97 + "</p>"
    assert not sanitize_html("<p>short</p>", max_bytes=100).truncated


def test_100000_nested_divs_do_not_exhaust_recursion():
    html = "<div>" * 100_000 + "deep" + "</div>" * 100_000
    out = clean(html)
    assert "deep" in out
    assert_safe_html(out)


def test_elements_beyond_the_budget_leave_their_text(monkeypatch):
    monkeypatch.setattr(parser, "MAX_ELEMENTS", 100)
    result = sanitize_html("<b>x</b>" * 110)
    assert result.truncated
    assert result.html.count("<b>") == 100
    # The last </b> is ignored too: the rest of the text stays in the <b>.
    assert result.html.endswith("<b>" + "x" * 11 + "</b>")


@pytest.mark.parametrize(
    "html",
    [
        pytest.param("x&#" + "1" * 10_000 + ";", id="long-reference"),
        pytest.param('<a href="&#' + "1" * 10_000 + ';">x</a>', id="long-reference-in-url"),
        pytest.param("<p" + "".join(f" a{i}=1" for i in range(5_000)) + ">x", id="many-attributes"),
        pytest.param('<p title="' + "&" * 50_000 + '">x', id="ampersands-in-value"),
        pytest.param("<p a" + "0" * 50_000 + "=1>x", id="long-attribute-name"),
        pytest.param("<!--" + "- " * 25_000 + "-->x", id="dashes-in-comment"),
        pytest.param("&amp;" * 50_000, id="many-references"),
        pytest.param("<input>x" * 20_000, id="many-dropped-siblings"),
        pytest.param("<table>" + "<b>x</b>y" * 10_000, id="content-moved-out-of-a-table"),
        pytest.param("<div>" + "<b a=1>" * 300 + "</div>x" * 300, id="formatting-reopened"),
    ],
)
def test_hostile_tokens_are_handled(html):
    assert_safe_html(clean(html))


SOUP_TAGS = (
    "a", "b", "i", "p", "li", "ul", "dd", "dl", "div", "span", "font", "h1", "pre", "table",
    "caption", "colgroup", "tbody", "tr", "td", "th", "form", "fieldset", "button", "select",
    "option", "marquee", "nobr", "listing", "xmp", "svg", "math", "mtext", "style", "script",
    "noscript", "template", "textarea", "title", "plaintext", "frameset", "body", "img", "br",
)  # fmt: skip
SOUP_TEXT = ("x", " ", "&amp;", "y&lt;", "\n", "&#65;", "<!--c-->")


def test_tag_soup_is_sanitised_to_a_fixed_point():
    """Stripping elements leaves trees the parser never builds; the output must not."""
    rng = random.Random(20240601)
    for _ in range(2000):
        pieces = []
        for _ in range(rng.randint(1, 14)):
            roll = rng.random()
            if roll < 0.45:
                pieces.append(f"<{rng.choice(SOUP_TAGS)}>")
            elif roll < 0.7:
                pieces.append(f"</{rng.choice(SOUP_TAGS)}>")
            else:
                pieces.append(rng.choice(SOUP_TEXT))
        soup = "".join(pieces)
        out = clean(soup)
        assert clean(out) == out, soup
        assert_safe_html(out)


def test_threads_get_the_same_results():
    html = '<table><tr><td style="color:red"><img src="cid:x"><a href="http://e.example">a</a>'

    def cid_url(content_id):
        return f"/parts/{content_id}"

    expected = clean(html, cid_url=cid_url)
    results = []

    def work():
        results.extend(clean(html, cid_url=cid_url) for _ in range(20))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 80


# --- plain text -----------------------------------------------------------------------


def test_plain_text_is_escaped():
    assert plain_text_to_html('<b>bold</b> & "quotes"') == (
        "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quotes&quot;"
    )


def test_plain_text_keeps_line_breaks():
    assert plain_text_to_html("one\r\ntwo\rthree\n\nfive") == "one\ntwo\nthree\n\nfive"


@pytest.mark.parametrize(
    ("text", "href", "label"),
    [
        ("see https://example.com/a?b=1&c=2 now", "https://example.com/a?b=1&c=2", None),
        ("see http://example.com.", "http://example.com", None),
        ("(see http://example.com/x)", "http://example.com/x", None),
        (
            "see http://en.wikipedia.org/wiki/Foo_(bar).",
            "http://en.wikipedia.org/wiki/Foo_(bar)",
            None,
        ),
        ("<https://example.com/>", "https://example.com/", None),
        ("go to www.example.com!", "http://www.example.com", "www.example.com"),
        (
            "write to someone@example.com, please",
            "mailto:someone@example.com",
            "someone@example.com",
        ),
        ("mailto:list@example.org?subject=hi", "mailto:list@example.org?subject=hi", None),
    ],
)
def test_plain_text_links(text, href, label):
    fragment = plain_text_to_html(text)
    a = only(fragment, "a")
    assert a.attrib == {"href": href, "target": "_blank", "rel": "noopener noreferrer"}
    assert a.text == (label or href)
    assert "".join(parse_as_browser(fragment).itertext()) == text


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "xhttp://example.com",
    ],
)
def test_plain_text_other_schemes_are_not_links(text):
    fragment = plain_text_to_html(text)
    assert parse_as_browser(fragment).find(".//a") is None
    assert "".join(parse_as_browser(fragment).itertext()) == text


def test_plain_text_link_cannot_break_out_of_its_attribute():
    fragment = plain_text_to_html('http://example.com/"onmouseover="alert(1)" x')
    a = only(fragment, "a")
    assert a.attrib == {
        "href": "http://example.com/",
        "target": "_blank",
        "rel": "noopener noreferrer",
    }
    assert_safe_html(fragment)


def test_plain_text_quotes_become_blockquotes():
    text = "Hi\n> quoted http://q.example\n>> deeper\n> back\nreply"
    fragment = plain_text_to_html(text)
    assert fragment == (
        'Hi<blockquote type="cite">quoted <a href="http://q.example" target="_blank" '
        'rel="noopener noreferrer">http://q.example</a><blockquote type="cite">deeper'
        "</blockquote>back</blockquote>reply"
    )
    assert_safe_html(fragment)


def test_plain_text_quote_depth_is_bounded():
    fragment = plain_text_to_html(">" * 10_000 + " deep")
    assert fragment.count("<blockquote") == 16
