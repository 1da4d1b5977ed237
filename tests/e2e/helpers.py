"""What the browser tests share: message builders, a loopback listener, signing in."""

from __future__ import annotations

import base64
import http.server
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path

from playwright.sync_api import Page, expect

from webmail.localmail.demo import solid_png

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"

#: The start of the mail of the standard inbox; each message is an hour later.
FIRST_DATE = datetime(2024, 3, 4, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def artifact_path(name: str) -> Path:
    """Where a screenshot called ``name`` goes; pytest's node ids become file names."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".png")


def png(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A small, valid, single-colour PNG image."""
    return solid_png(width, height, rgb)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class InlineImage:
    content_id: str  # without <>
    data: bytes


def build_message(
    subject: str,
    *,
    sender: str = "Alice Martin <alice@example.org>",
    to: str = "me@example.test",
    date: datetime | None = None,
    text: str | None = None,
    html: str | bytes | None = None,
    inline_images: tuple[InlineImage, ...] = (),
    attachments: tuple[Attachment, ...] = (),
) -> bytes:
    """A message as a mail client would send it: text and/or HTML, images, attachments."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date or FIRST_DATE)
    message["Message-ID"] = make_msgid(domain="example.org")
    if text is not None:
        message.set_content(text)
    if html is not None:
        # Base64 keeps long one-line payloads (hostile vectors) intact in transit;
        # bytes go as they are, valid UTF-8 or not.
        if isinstance(html, bytes):
            arguments = (html, "text", "html")
            options = {"cte": "base64", "params": {"charset": "utf-8"}}
        else:
            arguments, options = (html,), {"subtype": "html", "cte": "base64"}
        if text is None:
            message.set_content(*arguments, **options)
        else:
            message.add_alternative(*arguments, **options)
        if inline_images:
            html_part = message if text is None else message.get_payload()[-1]
            for image in inline_images:
                html_part.add_related(
                    image.data, "image", "png", cid=f"<{image.content_id}>", disposition="inline"
                )
    for attachment in attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message.as_bytes(policy=SMTP)


def encoded_word(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


@dataclass(frozen=True)
class Sample:
    """One message of the standard inbox, with what the screens should show of it."""

    key: str
    subject: str
    sender_name: str
    date: datetime
    raw: bytes


CONTRACT = Attachment(
    "contract.pdf", "application/pdf", b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
)
OFFICE_PHOTO_WIDTH = 48
OFFICE_PHOTO = InlineImage("office-photo@example.org", png(OFFICE_PHOTO_WIDTH, 32, (30, 120, 200)))
PLAIN_LINK = "https://example.org/reports/q3?year=2024&view=full"
UNICODE_SUBJECT = "Réunion à 15 h — 日本語"
UNICODE_SENDER = "Zoë Ünal"


def standard_inbox(remote_base: str) -> list[Sample]:
    """The mail ``signed_in_page`` delivers, oldest first; ``remote_base`` serves its images."""
    dates = [FIRST_DATE + timedelta(hours=hour) for hour in range(6)]
    unicode_raw = (
        f"From: {encoded_word(UNICODE_SENDER)} <zoe@example.org>\r\n"
        "To: me@example.test\r\n"
        f"Subject: {encoded_word(UNICODE_SUBJECT)}\r\n"
        f"Date: {format_datetime(dates[5])}\r\n"
        f"Message-ID: {make_msgid(domain='example.org')}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "À tout à l'heure.\r\n"
    ).encode()
    return [
        Sample(
            "plain",
            "Quarterly figures",
            "Alice Martin",
            dates[0],
            build_message(
                "Quarterly figures",
                date=dates[0],
                text=(
                    "Hello,\n\n"
                    f"The report is at {PLAIN_LINK}.\n"
                    "Markup stays text: <b>not bold</b> & <script>alert(1)</script>\n"
                ),
            ),
        ),
        Sample(
            "html",
            "Team lunch menu",
            "Bruno Petit",
            dates[1],
            build_message(
                "Team lunch menu",
                sender="Bruno Petit <bruno@example.org>",
                date=dates[1],
                text="Lunch menu: Monday soup, Tuesday fish.",
                html=(
                    "<h1>Lunch menu</h1>"
                    '<table border="1" cellpadding="4"><tr><td>Monday</td><td>Soup</td></tr>'
                    "<tr><td>Tuesday</td><td>Fish</td></tr></table>"
                    '<p>Full <a href="https://example.org/menu">menu online</a>.</p>'
                ),
            ),
        ),
        Sample(
            "attachment",
            "Signed contract",
            "Claire Dubois",
            dates[2],
            build_message(
                "Signed contract",
                sender="Claire Dubois <claire@example.org>",
                date=dates[2],
                text="The signed contract is attached.",
                attachments=(CONTRACT,),
            ),
        ),
        Sample(
            "inline",
            "Photo of the office",
            "Denis Moreau",
            dates[3],
            build_message(
                "Photo of the office",
                sender="Denis Moreau <denis@example.org>",
                date=dates[3],
                text="Our new office (picture in the HTML version).",
                html=(
                    "<p>Our new office:</p>"
                    f'<img id="photo" src="cid:{OFFICE_PHOTO.content_id}" alt="The office">'
                ),
                inline_images=(OFFICE_PHOTO,),
            ),
        ),
        Sample(
            "remote",
            "Newsletter with pictures",
            "Office News",
            dates[4],
            build_message(
                "Newsletter with pictures",
                sender="Office News <news@example.org>",
                date=dates[4],
                html=(
                    "<h2>This week</h2>"
                    f'<img id="banner" src="{remote_base}/newsletter/banner.png" alt="Banner"'
                    ' width="120" height="40">'
                ),
            ),
        ),
        Sample("unicode", UNICODE_SUBJECT, UNICODE_SENDER, dates[5], unicode_raw),
    ]


@dataclass
class ListenerRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class LoopbackListener:
    """A plain HTTP server on 127.0.0.1 that records every request it gets.

    Image paths answer with a PNG so that a browser that was allowed to load
    them shows them; everything else gets a small text answer.
    """

    requests: list[ListenerRequest] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        listener = self
        image = png()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                listener.requests.append(
                    ListenerRequest(self.command, self.path, dict(self.headers.items()))
                )
                is_image = self.path.split("?", 1)[0].endswith(".png")
                body = image if is_image else b"/* recorded */\n"
                self.send_response(200)
                self.send_header("Content-Type", "image/png" if is_image else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, format: str, *args: object) -> None:
                """Requests are recorded, not printed."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        return [request.path for request in self.requests]


def sign_in(page: Page, login: str, password: str) -> None:
    """Sign in through the form and wait for the mailbox it leads to."""
    page.goto("/accounts/login/")
    page.fill("input[name=username]", login)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/a/\d+/"))
