"""Facteur runs as docker-compose.yml runs it, with production settings.

Everything is a real process: collectstatic as the Dockerfile runs it, with the
manifest storage; `check --deploy`; migrate into a fresh PostgreSQL database; the
operator's provisioning commands; then the web service's command from
docker-compose.yml (gunicorn with its config), spoken to over HTTP as the proxy
does, and, where Caddy is installed, through the deployment's Caddyfile over TLS.
Debug mode cannot pass: it serves static files under their plain names,
which the manifest's hashed names replace, and `check --deploy` warns of it.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser
from http.client import HTTPConnection, HTTPResponse, HTTPSConnection
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.integration.celery_worker import RedisServer, free_port, wait_for
from tests.support.deployment import (
    CADDYFILE,
    ROOT,
    compose_command,
    dockerfile_manage_command,
)

pytestmark = pytest.mark.integration

#: The suite's PostgreSQL server (no database in the URL): the test makes a database of its own.
POSTGRES_URL = os.environ.get("FACTEUR_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
HSTS_SECONDS = 31536000
#: What `manage.py check --deploy` may warn of, each explained in the README's
#: "Running it for real": no SSL redirect in the app (the proxy redirects), HSTS
#: without includeSubDomains and without preload (the domain owner's decisions).
EXPLAINED_DEPLOY_WARNINGS = {"security.W008", "security.W005", "security.W021"}
#: Bound on one management command (collectstatic compresses every file).
COMMAND_TIMEOUT = 240


def _admin_connection() -> psycopg.Connection:
    server = urlsplit(POSTGRES_URL)
    try:
        return psycopg.connect(
            server._replace(path="/postgres").geturl(), connect_timeout=3, autocommit=True
        )
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at {server.netloc}: {error}")


@pytest.fixture
def database_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"facteur_smoke_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(POSTGRES_URL)._replace(path=f"/{name}").geturl()
    finally:
        with _admin_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis of the test's own, as compose's broker and shared cache."""
    server = RedisServer(tmp_path / "redis.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class Production:
    env: dict[str, str]
    tmp: Path
    port: int

    def run(self, *command: str) -> subprocess.CompletedProcess:
        """A command as the image runs it: the virtualenv's programs come first in PATH."""
        result = subprocess.run(
            list(command),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
        return result


@pytest.fixture
def production(tmp_path: Path, database_url: str, redis_url: str) -> Production:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FACTEUR_", "DJANGO_")) and k != "DATABASE_URL"
    }
    env.update(
        # The image's `python` and `gunicorn` are this virtualenv's.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        FACTEUR_SECRET_KEY=secrets.token_urlsafe(50),
        FACTEUR_CREDENTIALS_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=database_url,
        FACTEUR_STATIC_ROOT=str(tmp_path / "static"),
        FACTEUR_DATA_DIR=str(tmp_path / "data"),
        FACTEUR_BROKER_URL=redis_url,
        FACTEUR_CACHE_URL=redis_url.rsplit("/", 1)[0] + "/1",
        FACTEUR_ALLOWED_HOSTS="localhost",
        FACTEUR_SECURE_COOKIES="true",
        FACTEUR_BEHIND_TLS_PROXY="true",
        # This test speaks to gunicorn as the proxy does, from loopback.
        FACTEUR_TRUSTED_PROXIES="127.0.0.1",
        FACTEUR_BIND=f"127.0.0.1:{port}",
    )
    assert "FACTEUR_DEBUG" not in env
    return Production(env=env, tmp=tmp_path, port=port)


@contextlib.contextmanager
def serving(production: Production) -> Iterator[subprocess.Popen]:
    """The web service's command from docker-compose.yml, on a free loopback port."""
    log = (production.tmp / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        compose_command("web"),
        cwd=ROOT,
        env=production.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def answers() -> bool:
        assert process.poll() is None, (production.tmp / "gunicorn.log").read_text()
        try:
            connection = HTTPConnection("127.0.0.1", production.port, timeout=5)
            connection.request("GET", "/accounts/login/", headers={"Host": "localhost"})
            connection.getresponse().read()
            return True
        except OSError:
            return False

    try:
        wait_for(answers, timeout=60, what="gunicorn to answer")
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


class _Assets(HTMLParser):
    """The stylesheets and scripts a page links."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.urls.append(found["href"])
        elif tag == "script" and found.get("src"):
            self.urls.append(found["src"])


def assets_of(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


class Browser:
    """HTTP as a browser sends it, with the cookies set so far (Secure ones included:
    the browser's side is HTTPS), through ``connect``."""

    def __init__(self, connect: Callable[[], HTTPConnection], headers: dict[str, str]) -> None:
        self.connect = connect
        self.headers = headers
        self.cookies = SimpleCookie()
        self.set_cookie_headers: list[str] = []

    @classmethod
    def behind_proxy(cls, port: int) -> Browser:
        """Straight to gunicorn, with the headers Facteur's proxy adds."""
        return cls(
            lambda: HTTPConnection("127.0.0.1", port, timeout=60),
            {
                "Host": "localhost",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-For": "192.0.2.10",
                "Origin": "https://localhost",
            },
        )

    @classmethod
    def over_tls(cls, port: int, context: ssl.SSLContext) -> Browser:
        """Through the proxy itself, over HTTPS."""
        return cls(
            lambda: HTTPSConnection("localhost", port, timeout=60, context=context),
            {"Origin": f"https://localhost:{port}"},
        )

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[HTTPResponse, str]:
        headers = dict(self.headers)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={m.value}" for k, m in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = self.connect()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            self.set_cookie_headers.append(header)
            self.cookies.load(header)
        connection.close()
        return response, text

    def get(self, path: str) -> tuple[HTTPResponse, str]:
        return self.request("GET", path)

    def set_cookie(self, name: str) -> str:
        return next(h for h in reversed(self.set_cookie_headers) if h.startswith(f"{name}="))


def assert_security_headers(response: HTTPResponse) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert csp and "default-src" in csp
    assert headers["X-Frame-Options"] == "DENY" or "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Strict-Transport-Security"] == f"max-age={HSTS_SECONDS}"


def assert_assets_served(browser: Browser, html: str) -> list[str]:
    urls = assets_of(html)
    assert any(url.startswith("/static/") for url in urls)
    for url in urls:
        if url.startswith("/static/"):
            # The manifest's names: a hash of the content before the extension.
            assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", url), url
        response, body = browser.get(url)
        assert response.status == 200, url
        assert body.strip(), url
        assert response.headers["Content-Type"].split(";")[0] in {
            "text/css",
            "text/javascript",
            "application/javascript",
        }
    return urls


def provision(production: Production, mail_server, mail_user) -> tuple[str, str]:
    """A person with an IMAP account on the suite's mail server, made as an operator does."""
    production.run(
        "python",
        "manage.py",
        "add_preset",
        "Office",
        "--domain",
        mail_server.domain,
        "--imap",
        f"{mail_server.host}:{mail_server.imap_port}",
        "--imap-security",
        "starttls",
        "--smtp",
        f"{mail_server.host}:{mail_server.submission_port}",
        "--smtp-security",
        "starttls",
        "--ca-file",
        str(mail_server.ca_file),
    )
    username, password = "camille", secrets.token_urlsafe(16)
    people = production.tmp / "people.csv"
    with people.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["username", "email", "password", "mail_login", "mail_password", "preset"])
        writer.writerow([username, mail_user.address, password, "", mail_user.password, "Office"])
    production.run("python", "manage.py", "import_people", str(people))
    return username, password


def prepare(production: Production, mail_server, mail_user) -> tuple[str, str, str]:
    """Static files, checks, schema, a person and a message: what an operator does before
    starting the web service. Returns the person's name and password, and the subject."""
    production.run(*dockerfile_manage_command("collectstatic"))
    manifest = Path(production.env["FACTEUR_STATIC_ROOT"]) / "staticfiles.json"
    assert manifest.is_file()

    check = production.run("python", "manage.py", "check", "--deploy", "--fail-level", "ERROR")
    warnings = set(re.findall(r"\((security\.W\d+)\)", check.stderr + check.stdout))
    assert warnings == EXPLAINED_DEPLOY_WARNINGS, check.stderr

    production.run("python", "manage.py", "migrate", "--noinput")
    username, password = provision(production, mail_server, mail_user)
    subject = f"Smoke test {uuid.uuid4().hex[:8]}"
    message = EmailMessage()
    message["From"] = "Lucie <lucie@example.org>"
    message["To"] = mail_user.address
    message["Subject"] = subject
    message.set_content("The production path works.")
    mail_server.deliver(mail_user.address, message.as_bytes())
    return username, password, subject


def test_production_stack_serves_sign_in_static_files_and_the_inbox(
    production: Production, mail_server, mail_user
):
    username, password, subject = prepare(production, mail_server, mail_user)
    with serving(production):
        check_the_site(Browser.behind_proxy(production.port), username, password, subject)


def check_the_site(browser: Browser, username: str, password: str, subject: str) -> None:
    """Sign-in page, its static files, signing in, the Inbox and the editor's page."""
    response, html = browser.get("/accounts/login/")
    assert response.status == 200
    assert_security_headers(response)
    assert_assets_served(browser, html)
    csrf = browser.set_cookie("csrftoken")
    assert "Secure" in csrf and "SameSite=Lax" in csrf

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response, _ = browser.request(
        "POST",
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "username": username, "password": password},
    )
    assert response.status == 302, response.status
    session = browser.set_cookie("sessionid")
    assert "Secure" in session and "HttpOnly" in session

    location = urlsplit(response.headers["Location"]).path
    for _ in range(3):
        response, html = browser.get(location)
        if response.status != 302:
            break
        location = urlsplit(response.headers["Location"]).path
    assert response.status == 200, location
    account = re.fullmatch(r"/a/(\d+)/", location)
    assert account, location
    assert subject in html
    assert_security_headers(response)
    assert_assets_served(browser, html)

    # The page that loads the vendored editor.
    response, html = browser.get(f"/a/{account.group(1)}/compose/")
    assert response.status == 200
    assert any("trix-2.1.19.umd.min." in url for url in assert_assets_served(browser, html))

    # Errors are production's: no debug page naming settings and URL patterns.
    response, html = browser.get("/no-such-page/")
    assert response.status == 404
    assert "URLconf" not in html and "DEBUG = True" not in html


@contextlib.contextmanager
def caddy_in_front(
    binary: str, production: Production
) -> Iterator[tuple[int, int, ssl.SSLContext]]:
    """deploy/caddy/Caddyfile run by Caddy (``binary``) on free loopback ports, with
    gunicorn's address for the web service's name. Yields its HTTP and HTTPS ports and
    a TLS context that trusts its internal CA."""
    caddyfile = CADDYFILE.read_text()
    assert "dynamic a web 8000 {" in caddyfile
    http_port, https_port = free_port(), free_port()
    home = production.tmp / "caddy"
    home.mkdir()
    (home / "Caddyfile").write_text(
        "{\n\tadmin off\n\tdefault_bind 127.0.0.1\n\tskip_install_trust\n"
        f"\thttp_port {http_port}\n\thttps_port {https_port}\n}}\n"
        + caddyfile.replace("dynamic a web 8000 {", f"dynamic a 127.0.0.1 {production.port} {{")
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    log = (home / "caddy.log").open("wb")
    process = subprocess.Popen(
        [binary, "run", "--config", str(home / "Caddyfile"), "--adapter", "caddyfile"],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    root = home / "data/caddy/pki/authorities/local/root.crt"

    def answers() -> ssl.SSLContext | None:
        assert process.poll() is None, (home / "caddy.log").read_text()
        if not root.exists():
            return None
        context = ssl.create_default_context(cafile=str(root))
        try:
            connection = HTTPSConnection("localhost", https_port, timeout=5, context=context)
            connection.request("GET", "/accounts/login/")
            connection.getresponse().read()
            return context
        except (OSError, ssl.SSLError):
            return None

    try:
        context = wait_for(answers, timeout=60, what="Caddy to answer over TLS")
        yield http_port, https_port, context
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_through_the_tls_proxy(production: Production, mail_server, mail_user):
    """The same, through Caddy with the deployment's own Caddyfile: TLS from its CA,
    plain HTTP redirected, and the forwarded headers it sets make Facteur's cookies
    Secure and its HSTS header sent."""
    binary = shutil.which("caddy")
    if binary is None:
        pytest.skip("caddy is not installed (Debian's caddy package): the proxy is not run")
    username, password, subject = prepare(production, mail_server, mail_user)
    proxy = caddy_in_front(binary, production)
    with serving(production), proxy as (http_port, https_port, context):
        plain = HTTPConnection("localhost", http_port, timeout=30)
        plain.request("GET", "/accounts/login/")
        redirect = plain.getresponse()
        assert redirect.status in {301, 308}
        assert redirect.headers["Location"].startswith("https://localhost")
        plain.close()

        check_the_site(Browser.over_tls(https_port, context), username, password, subject)
