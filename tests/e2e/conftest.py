"""Real headless Chromium against the live app and the suite's real mail server.

One browser per session, a fresh context (cookies, storage) per test. When a
test fails, its page is saved as a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from accounts.models import MailAccount
from tests.e2e.helpers import LoopbackListener, Sample, artifact_path, sign_in, standard_inbox
from tests.support.accounts import make_account

# Playwright's sync API keeps an asyncio event loop on the main thread, so Django
# believes the fixtures' and tests' plain ORM calls run inside async code and
# raises SynchronousOnlyOperation. They do not: Playwright only switches to its
# loop inside its own calls, and the live server answers from its own thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}
#: Browser actions wait this long at most: everything runs on loopback.
ACTION_TIMEOUT_MS = 10_000
PASSWORD = "correct-Horse-7-battery"

_people = itertools.count(1)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Keep each phase's report on the item, for the page fixture's teardown."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (install Debian's chromium package)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def device(request: pytest.FixtureRequest) -> str:
    """The device a test's context emulates; parametrize it indirectly for another."""
    return getattr(request, "param", "desktop")


@pytest.fixture
def context(browser: Browser, live_server, device: str) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=live_server.url,
        accept_downloads=True,
        locale="en-GB",
        timezone_id="Europe/Paris",
        **DEVICES[device],
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = context.new_page()
    screenshot = artifact_path(request.node.name)
    screenshot.unlink(missing_ok=True)  # from an earlier failed run
    yield page
    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    if failed and not page.is_closed():
        page.screenshot(path=screenshot, full_page=True)


@pytest.fixture
def listener() -> Iterator[LoopbackListener]:
    """A loopback HTTP server standing for every remote host a message may name."""
    server = LoopbackListener()
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Mailbox:
    address: str
    password: str


@dataclass
class Person:
    user: object  # the Django user
    username: str
    email: str
    password: str
    accounts: list[MailAccount]


@pytest.fixture
def new_mailbox(mail_server) -> Callable[[], Mailbox]:
    """Makes another fresh user on the mail server."""

    def make() -> Mailbox:
        mailbox = Mailbox(f"e2e-{uuid.uuid4().hex[:12]}@{mail_server.domain}", uuid.uuid4().hex)
        mail_server.add_user(mailbox.address, mailbox.password)
        return mailbox

    return make


@pytest.fixture
def make_person(transactional_db, django_user_model, mail_server) -> Callable[..., Person]:
    """Makes a person with a Django login and one mail account per mailbox given."""

    def make(*mailboxes) -> Person:
        number = next(_people)
        username = f"reader{number}"
        email = mailboxes[0].address if mailboxes else f"{username}@office.test"
        user = django_user_model.objects.create_user(
            username=username, email=email, password=PASSWORD
        )
        accounts = [
            make_account(user, mail_server, mailbox, position=position)
            for position, mailbox in enumerate(mailboxes)
        ]
        return Person(user, username, email, PASSWORD, accounts)

    return make


@pytest.fixture
def inbox(listener: LoopbackListener) -> list[Sample]:
    """The standard mail delivered by ``signed_in_page``, oldest first."""
    return standard_inbox(listener.base_url)


@pytest.fixture
def signed_in_page(page: Page, make_person, mail_server, mail_user, inbox):
    """A person signed in through the form, whose Inbox holds the standard mail.

    Yields (page, account, mail_user); the mail is delivered before signing in,
    so its UIDs are 1, 2, ... in the order of ``inbox``.
    """
    person = make_person(mail_user)
    for sample in inbox:
        mail_server.deliver(mail_user.address, sample.raw)
    sign_in(page, person.username, person.password)
    yield page, person.accounts[0], mail_user
