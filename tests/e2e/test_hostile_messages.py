"""Hostile mail opened in real Chromium: nothing may run, load from elsewhere, or navigate.

Every message goes through the real path (delivery to Dovecot, IMAP, parsing,
sanitising, the message page and its sandboxed frame). The browser is watched
from every side at once:

- ``alert``, ``confirm``, ``prompt`` and ``print`` are replaced in every
  document (an init script), and a dialog must never open;
- the console must never report a blocked script, a sandbox refusal or a
  Content-Security-Policy violation: each means active or remote content got
  past the sanitiser and only the second wall stopped it;
- every request is routed: any request to another origin than the app's is
  aborted and counted, and so is any request from the body frame to the app
  other than an inline image;
- a loopback listener stands for every remote host a message names: it must
  receive nothing;
- the page must stay where it is, open no popup, start no download.

Many vectors only fire on interaction, so each element of the body is focused,
hovered and (unless it is a link, which opens a new tab by design) clicked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import pytest
from django.urls import reverse
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Frame,
    Locator,
    Page,
    Request,
    Response,
    Route,
)
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.helpers import (
    Attachment,
    InlineImage,
    LoopbackListener,
    build_message,
    sign_in,
)
from tests.support.corpus import require_corpus

pytestmark = pytest.mark.e2e

VECTORS_PER_MESSAGE = 40
#: Shown escaped in every subject and sender name we write: the page itself must not run it.
HEADER_PAYLOAD = "<img src=x onerror=alert('header')>"

TRAPS = """
(() => {
  const calls = [];
  Object.defineProperty(window, "__facteurTrapCalls", { value: calls });
  for (const name of ["alert", "confirm", "prompt", "print"]) {
    window[name] = function (...args) {
      const call = name + "(" + args.map(String).join(", ") + ")";
      calls.push(call);
      try { window.top.__facteurTrapCalls.push(call); } catch (e) { /* another origin */ }
      return null;
    };
  }
})();
"""

#: The body's elements, found with the DOM's own methods: a hostile document
#: can shadow ``document.body`` or ``form.focus`` with named elements.
ELEMENTS = """
  const method = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).value;
  const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).get;
  const elements = method(Document.prototype, "querySelectorAll").call(document, "body *");
"""
COUNT = "() => {" + ELEMENTS + "return elements.length; }"

#: Focus element ``index`` of the body, bring it into the visible part of the frame
#: (scrolling the frame's own document only, so that the frame stays put in the
#: page), and say where to point at it and whether a click there would hit a link.
PROBE = (
    "([index, top, bottom]) => {"
    + ELEMENTS
    + """
  const element = elements[index];
  if (!element) return null;
  for (const kind of [HTMLElement, SVGElement, globalThis.MathMLElement]) {
    if (kind && element instanceof kind) {
      try { method(kind.prototype, "focus").call(element, { preventScroll: true }); } catch (e) {}
    }
  }
  const root = method(Document.prototype, "querySelector").call(document, "html");
  const width = getter(Element.prototype, "clientWidth").call(root);
  const rect = method(Element.prototype, "getBoundingClientRect");
  const point = () => {
    const r = rect.call(element);
    return [r.left + Math.min(r.width, width) / 2, r.top + Math.min(r.height, bottom - top) / 2,
            r.width >= 1 && r.height >= 1];
  };
  let [x, y, shown] = point();
  if (!shown) return null;
  if (y < top || y > bottom || x < 0 || x > width) {
    // The window's own methods: named elements cannot shadow those.
    window.scrollBy(x < 0 || x > width ? x - width / 2 : 0,
                    y < top || y > bottom ? y - (top + bottom) / 2 : 0);
    [x, y, shown] = point();
  }
  if (y < top || y > bottom || x < 0 || x > width) return null;
  const hit = method(Document.prototype, "elementFromPoint").call(document, x, y);
  const closest = method(Element.prototype, "closest");
  const link = "a[href], area[href]";
  return { x, y, link: Boolean((hit && closest.call(hit, link)) || closest.call(element, link)) };
}"""
)

#: Where to point at the headers the page shows of the message (its own document).
HEADER_POINTS = """() => Array.from(
  document.querySelectorAll("#message-subject, .message-headers dd, .attachments a"),
  (element) => {
    const r = element.getBoundingClientRect();
    return [r.left + r.width / 2, r.top + r.height / 2];
  }
).filter(([x, y]) => x >= 0 && y >= 0 && x < innerWidth && y < innerHeight)"""

#: Console messages that mean the second wall (sandbox, CSP) had to stop something.
ALARMING_CONSOLE = re.compile(r"script|content security policy|sandbox|allow-", re.IGNORECASE)


@dataclass(frozen=True)
class Hostile:
    label: str
    raw: bytes
    # What the page must show, for the messages we wrote: so that a message
    # shown without its body or its attachments cannot pass for a safe one.
    subject: str | None = None
    html_body: bool = False
    attachments: int = 0


def hostile_message(
    label: str,
    *,
    html: str | bytes | None = None,
    attachments: tuple[Attachment, ...] = (),
    **kwargs,
) -> Hostile:
    subject = f"{label} {HEADER_PAYLOAD}"
    raw = build_message(
        subject,
        sender=f'"{HEADER_PAYLOAD}" <attacker@example.org>',
        html=html,
        attachments=attachments,
        **kwargs,
    )
    return Hostile(label, raw, subject, html_body=html is not None, attachments=len(attachments))


class Guard:
    """Watches one browser context while it opens hostile mail, and lists what went wrong."""

    def __init__(
        self, context: BrowserContext, page: Page, origin: str, listener: LoopbackListener
    ):
        self.page, self.origin, self.listener = page, origin, listener
        self.failures: list[str] = []
        self.current = "signing in"
        self.responses: dict[str, Response] = {}
        context.add_init_script(TRAPS)
        context.route("**/*", self._route)
        context.on("page", self._popup)
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("download", lambda download: self.fail(f"download of {download.url}"))
        page.on("response", self._response)

    def fail(self, what: str) -> None:
        self.failures.append(f"{self.current}: {what}")

    def _route(self, route: Route, request: Request) -> None:
        url = request.url
        if not url.startswith(self.origin + "/"):
            self.fail(f"request to another origin: {request.method} {url}")
            route.abort("blockedbyclient")
            return
        path = urlsplit(url).path
        try:
            in_body = request.frame.parent_frame is not None
        except PlaywrightError:  # a request of no frame (a service worker): not the body's
            in_body = False
        if in_body and not re.match(r"^/(inline/|a/\d+/m/\d+/body/$)", path):
            self.fail(f"the body asked the app for {request.method} {path}")
            route.abort("blockedbyclient")
            return
        route.continue_()

    def _response(self, response: Response) -> None:
        self.responses[response.url] = response

    def _popup(self, popup: Page) -> None:
        self.fail(f"a new page opened: {popup.url}")
        popup.close()

    def _dialog(self, dialog: Dialog) -> None:
        self.fail(f"a {dialog.type} dialog opened: {dialog.message!r}")
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type in ("error", "warning") and ALARMING_CONSOLE.search(text):
            self.fail(f"console {message.type}: {text}")

    def open(self, url: str, hostile: Hostile) -> None:
        """Open one message, provoke everything in it, and check every wall."""
        self.current = hostile.label
        self.responses.clear()
        response = self.page.goto(url)
        if response is None or response.status != 200:
            self.fail(f"the message page answered {response and response.status}")
            return
        if hostile.subject is not None:
            shown = self.page.locator("#message-subject").text_content()
            if shown.strip() != hostile.subject:
                self.fail(f"wrong subject shown: {shown!r}")
        for x, y in self.page.evaluate(HEADER_POINTS):
            self.page.mouse.move(x, y)
        frames = self.page.locator("iframe.message-body")
        if hostile.html_body and not frames.count():
            self.fail("the HTML body is not shown in its frame")
        listed = self.page.locator(".attachments a.attachment").count()
        if listed < hostile.attachments:
            self.fail(f"{listed} attachments listed instead of {hostile.attachments}")
        if frames.count():
            self._check_frame_element(frames.first)
            body = frames.first.element_handle().content_frame()
            self._check_body_response(body.url)
            self._provoke(body)
        self._check_attachments()
        self.check_after()
        if self.page.url != urljoin(self.origin, url):
            self.fail(f"the page navigated to {self.page.url}")

    def _check_frame_element(self, frame_element: Locator) -> None:
        sandbox = frame_element.get_attribute("sandbox")
        if sandbox is None:
            self.fail("the body frame has no sandbox attribute")
        elif {"allow-scripts", "allow-same-origin"} & set(sandbox.split()):
            self.fail(f"the body frame's sandbox lets too much through: {sandbox!r}")

    def _check_body_response(self, url: str) -> None:
        response = self.responses.get(url)
        if response is None:
            self.fail(f"no response seen for the body frame at {url}")
            return
        policy = response.header_value("content-security-policy") or ""
        directives = {
            name.lower(): values
            for name, *values in (part.split() for part in policy.split(";") if part.strip())
        }
        if directives.get("default-src") != ["'none'"]:
            self.fail(f"the body's CSP lacks default-src 'none': {policy!r}")
        if {"http:", "https:", "*"} & set(directives.get("img-src", [])):
            self.fail(f"the body's CSP allows remote images without consent: {policy!r}")
        if "sandbox" not in directives or {"allow-scripts", "allow-same-origin"} & set(
            directives["sandbox"]
        ):
            self.fail(f"the body's CSP does not sandbox it: {policy!r}")

    def _provoke(self, body: Frame) -> None:
        frame_element = body.frame_element()
        frame_element.scroll_into_view_if_needed()
        box = frame_element.bounding_box()
        height = self.page.viewport_size["height"]
        # The part of the frame inside the page's viewport, in the frame's coordinates.
        top, bottom = max(0, -box["y"]) + 2, min(box["height"], height - box["y"]) - 2
        try:
            for index in range(body.evaluate(COUNT)):
                target = body.evaluate(PROBE, [index, top, bottom])
                if target is None:
                    continue
                x, y = box["x"] + target["x"], box["y"] + target["y"]
                if target["link"]:
                    self.page.mouse.move(x, y)
                else:
                    self.page.mouse.click(x, y)
        except PlaywrightError as error:
            self.fail(f"the body frame went away while provoked: {error.message}")
        if body.is_detached() or body.url != urljoin(
            self.origin, frame_element.get_attribute("src")
        ):
            self.fail(f"the body frame navigated to {body.url}")

    def _check_attachments(self) -> None:
        """Every part downloads, never runs: even when asked for inline."""
        for link in self.page.locator(".attachments a.attachment").all():
            href = link.get_attribute("href")
            for url in (href, href + "&inline=1"):
                response = self.page.request.get(url)
                headers = response.headers
                kind = headers.get("content-type", "")
                disposition = headers.get("content-disposition", "")
                inline_image = disposition.startswith("inline") and kind.startswith(
                    ("image/png", "image/jpeg", "image/gif", "image/webp")
                )
                if response.status != 200:
                    self.fail(f"attachment {url} answered {response.status}")
                elif not (disposition.startswith("attachment") or inline_image):
                    self.fail(f"attachment {url} served as {kind!r}, {disposition!r}")
                if headers.get("x-content-type-options") != "nosniff":
                    self.fail(f"attachment {url} lacks nosniff")
                policy = headers.get("content-security-policy", "")
                if "sandbox" not in policy or "default-src 'none'" not in policy:
                    self.fail(f"attachment {url} lacks a sandboxing CSP: {policy!r}")

    def check_after(self) -> None:
        """What must hold after each message: no frame, trap call or remote request."""
        # Let requests started by the last hover reach the route before looking.
        self.page.wait_for_timeout(50)
        main = self.page.main_frame
        known = [main] + [
            frame
            for frame in main.child_frames
            if frame.url.startswith(self.origin + "/") and "/body/" in frame.url
        ]
        if len(self.page.frames) != len(known):
            self.fail(f"unexpected frames: {[frame.url for frame in self.page.frames]}")
        # Only our own documents: evaluating in a frame that never loaded could wait forever.
        for frame in known:
            calls = frame.evaluate("() => window.__facteurTrapCalls || []")
            if calls:
                self.fail(f"trapped calls in {frame.url}: {calls}")
        if self.listener.requests:
            self.fail(f"the loopback listener was asked for {self.listener.paths}")
            self.listener.requests.clear()

    def report(self) -> str:
        return f"{len(self.failures)} problems:\n" + "\n".join(self.failures)


@pytest.fixture
def guard(context, page, listener, live_server) -> Guard:
    return Guard(context, page, live_server.url, listener)


def open_all(guard: Guard, make_person, mail_server, mail_user, messages: list[Hostile]) -> None:
    """Deliver ``messages``, sign in, and open each of them under the guard's eyes."""
    for hostile in messages:
        mail_server.deliver(mail_user.address, hostile.raw)
    person = make_person(mail_user)
    sign_in(guard.page, person.username, person.password)
    # A fresh mailbox numbers its messages 1, 2, ... in the order they arrived.
    for uid, hostile in enumerate(messages, start=1):
        url = reverse("webmail:message", args=[person.accounts[0].pk, uid]) + "?folder=INBOX"
        guard.open(url, hostile)
    guard.current = "after the last message"
    guard.check_after()
    assert not guard.failures, guard.report()


def test_xss_vector_corpus(guard, make_person, mail_server, mail_user):
    vectors = json.loads(require_corpus("xss", "vectors.json").read_text())
    messages = []
    for start in range(0, len(vectors), VECTORS_PER_MESSAGE):
        batch = vectors[start : start + VECTORS_PER_MESSAGE]
        html = "\n".join(
            f'<div class="vector" title="{vector["id"]}">'
            + (
                vector["payload"]
                if vector.get("context", "html") == "html"
                else f"<style>{vector['payload']}</style>"
            )
            + "</div>"
            for vector in batch
        )
        messages.append(
            hostile_message(f"vectors {batch[0]['id']} to {batch[-1]['id']}", html=html)
        )
    open_all(guard, make_person, mail_server, mail_user, messages)


H5SC_TYPES = {
    ".css": "text/css",
    ".dtd": "application/xml-dtd",
    ".eml": "message/rfc822",
    ".hta": "application/hta",
    ".htc": "text/x-component",
    ".html": "text/html",
    ".sct": "text/scriptlet",
    ".svg": "image/svg+xml",
    ".vml": "text/xml",
    ".xbl": "text/xml",
    ".xml": "text/xml",
    ".xsl": "text/xsl",
}


def test_whole_hostile_documents_and_active_attachments(guard, make_person, mail_server, mail_user):
    documents = sorted(require_corpus("xss", "html").glob("*.html"))
    active = sorted(
        path
        for path in require_corpus("xss", "h5sc-attachments").iterdir()
        if path.suffix in H5SC_TYPES
    )
    messages = [
        hostile_message(f"xss/html/{path.name}", html=path.read_bytes()) for path in documents
    ]
    messages += [
        hostile_message(f"h5sc {path.name} as the body", html=path.read_bytes()) for path in active
    ]
    messages.append(
        hostile_message(
            "h5sc files attached with their real types",
            text="Attached.",
            attachments=tuple(
                Attachment(path.name, H5SC_TYPES[path.suffix], path.read_bytes()) for path in active
            ),
        )
    )
    messages.append(
        hostile_message(
            "h5sc files mislabelled as PNG, attached and shown by cid",
            html="".join(f'<img src="cid:h5sc-{path.stem}@example.org" alt="">' for path in active),
            inline_images=tuple(
                InlineImage(f"h5sc-{path.stem}@example.org", path.read_bytes()) for path in active
            ),
            attachments=tuple(
                Attachment(path.name + ".png", "image/png", path.read_bytes()) for path in active
            ),
        )
    )
    eml = require_corpus("xss", "h5sc-attachments", "test.eml")
    messages.append(Hostile("h5sc test.eml delivered as a message", eml.read_bytes()))
    open_all(guard, make_person, mail_server, mail_user, messages)


def test_roundcube_rendering_corpus(guard, make_person, mail_server, mail_user):
    folder = require_corpus("mime", "roundcube")
    messages = [
        Hostile(f"mime/roundcube/{path.name}", path.read_bytes())
        for path in sorted(folder.glob("*.eml"))
    ]
    open_all(guard, make_person, mail_server, mail_user, messages)


#: Bodies that would each make a browser ask the listener for something;
#: ``@name@`` stands for the listener's URL of ``/r/name``.
REMOTE_LOADS = {
    "img src": '<img src="@img.png@" alt="x">',
    "img src, protocol-relative": '<img src="//@host@/r/relative.png" alt="x">',
    "img src, upper-case scheme": '<img src="HTTP://@host@/r/upper.png" alt="x">',
    "img src, entity in the scheme": '<img src="&#104;ttp://@host@/r/entity.png" alt="x">',
    "img src, tab in the scheme": '<img src="ht&#9;tp://@host@/r/tab.png" alt="x">',
    "img srcset": '<img srcset="@srcset.png@ 2x" alt="x">',
    "picture source srcset": '<picture><source srcset="@picture.png@"><img alt="x"></picture>',
    "img lowsrc and dynsrc": '<img lowsrc="@lowsrc.png@" dynsrc="@dynsrc.png@" alt="x">',
    "input type=image": '<input type="image" src="@input-image.png@" alt="x">',
    "CSS background url()": '<div style="background:url(@bg.png@);height:30px">x</div>',
    "CSS background-image, quoted": (
        "<div style=\"background-image:url('@bg-quoted.png@');height:30px\">x</div>"
    ),
    "CSS image-set()": (
        "<div style=\"background-image:image-set('@image-set.png@' 1x);height:30px\">x</div>"
    ),
    "CSS -webkit-image-set()": (
        '<div style="background-image:-webkit-image-set(url(@webkit-set.png@) 1x);height:30px">'
        "x</div>"
    ),
    "CSS escaped url()": '<div style="background:\\75\\72\\6c(@escaped.png@);height:30px">x</div>',
    "CSS escaped url() in a style element": (
        "<style>p { background: \\75\\72\\6c(@escaped-sheet.png@) }</style><p>x</p>"
    ),
    "CSS entity-encoded url()": '<div style="background:&#117;rl(@entity-css.png@)">x</div>',
    "CSS comment inside url()": '<div style="background:u/**/rl(@comment.png@)">x</div>',
    "CSS var() holding a url": '<div style="--x:url(@var.png@);background:var(--x)">x</div>',
    "CSS list-style-image": '<ul style="list-style-image:url(@list.png@)"><li>x</li></ul>',
    "CSS cursor, border-image, mask-image": (
        '<div style="cursor:url(@cursor.png@),auto;border:5px solid;'
        'border-image:url(@border.png@) 30;mask-image:url(@mask.png@)">x</div>'
    ),
    "style element background": "<style>body { background: url(@sheet.png@) }</style><p>x</p>",
    "style element :hover": (
        "<style>p:hover, span:hover { background: url(@hover.png@) }</style>"
        "<p>hover <span>me</span></p>"
    ),
    "style element content url()": (
        "<style>p::before { content: url(@content.png@) }</style><p>x</p>"
    ),
    "@import url()": "<style>@import url(@import.css@);</style><p>x</p>",
    "@import string": "<style>@import '@import-string.css@';</style><p>x</p>",
    "@font-face": (
        "<style>@font-face { font-family: r; src: url(@font.woff@) } p { font-family: r }</style>"
        "<p>x</p>"
    ),
    "link rel=stylesheet": '<link rel="stylesheet" href="@link.css@"><p>x</p>',
    "link rel=preload and prefetch": (
        '<link rel="preload" as="image" href="@preload.png@">'
        '<link rel="prefetch" href="@prefetch.png@"><p>x</p>'
    ),
    "video poster": '<video poster="@poster.png@" width="80" height="40"></video>',
    "video, audio and source src": (
        '<video src="@video.mp4@"></video><audio src="@audio.mp3@" controls></audio>'
        '<video><source src="@source.mp4@"></video>'
    ),
    "meta refresh": '<meta http-equiv="refresh" content="0;url=@refresh@"><p>x</p>',
    "base href": '<base href="@base/@"><img src="relative.png" alt="x"><a href="page">x</a>',
    "form with autofocus and onfocus": (
        '<form action="@form@" method="post">'
        '<input name="q" value="x" autofocus onfocus="this.form.submit()">'
        "<button>Send</button></form>"
    ),
    "button formaction": '<form><button formaction="@formaction@">Go</button></form>',
    "iframe src": '<iframe src="@iframe.html@"></iframe>',
    "iframe srcdoc": '<iframe srcdoc="&lt;img src=&quot;@srcdoc.png@&quot;&gt;"></iframe>',
    "object data and embed src": '<object data="@object.html@"></object><embed src="@embed.html@">',
    "SVG image href and xlink:href": (
        '<svg width="50" height="50"><image href="@svg-image.png@" width="50" height="50"/>'
        '<image xlink:href="@svg-xlink.png@" width="50" height="50"/></svg>'
    ),
    "SVG feImage and use": (
        '<svg width="50" height="50"><filter id="f"><feImage href="@feimage.png@"/></filter>'
        '<use href="@use.svg@#a"/><rect width="50" height="50" filter="url(#f)"/></svg>'
    ),
    "table, td and body background": (
        '<body background="@body-bg.png@"><table background="@table-bg.png@"><tr>'
        '<td background="@td-bg.png@">x</td></tr></table></body>'
    ),
    "a ping": '<a href="https://example.org/" ping="@ping@">ping</a>',
}


def remote_load(template: str, base: str) -> str:
    host = urlsplit(base).netloc
    return re.sub(
        r"@([^@]+)@", lambda match: host if match[1] == "host" else f"{base}/r/{match[1]}", template
    )


def test_remote_loads_are_blocked(guard, make_person, mail_server, mail_user, listener):
    messages = [
        hostile_message(f"remote load: {name}", html=remote_load(template, listener.base_url))
        for name, template in REMOTE_LOADS.items()
    ]
    open_all(guard, make_person, mail_server, mail_user, messages)
    assert listener.requests == []
