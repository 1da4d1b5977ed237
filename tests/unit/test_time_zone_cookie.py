"""The time zone a browser names in its cookie: a zone of the database, or nothing."""

from __future__ import annotations

import zoneinfo

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from webmail.middleware import TIMEZONE_COOKIE, UserTimezoneMiddleware, zone_from_name


@pytest.mark.parametrize(
    "name",
    [
        "Europe",
        "America",
        "right",
        "posix",
        "../../etc",
        "/etc/passwd",
        "Europe/",
        ".",
        "",
        "Z" * 10_000,
        "Europe/Paris/../../x",
        "zone.tab",
        "Europe/Paris\x00",
        None,
    ],
)
def test_anything_but_a_zone_is_no_zone(name):
    assert zone_from_name(name) is None


def test_a_zone_of_the_database_is_that_zone():
    assert zone_from_name("Europe/Paris") == zoneinfo.ZoneInfo("Europe/Paris")


def test_a_folder_of_the_database_never_reaches_the_file_system(monkeypatch):
    """Some installations (the tzdata package) raise IsADirectoryError for "Europe"."""

    def refuse(name):
        raise IsADirectoryError(name)

    monkeypatch.setattr(zoneinfo, "ZoneInfo", refuse)
    assert zone_from_name("Europe") is None
    assert zone_from_name("Europe/Paris") is None  # an error of the system is no zone either


@pytest.mark.parametrize("cookie", ["Europe", "../../etc", "", "x" * 10_000])
def test_the_middleware_falls_back_to_the_default_zone(cookie):
    seen = []

    def view(request):
        seen.append(timezone.get_current_timezone_name())
        return HttpResponse()

    request = RequestFactory().get("/", HTTP_COOKIE=f"{TIMEZONE_COOKIE}={cookie}")
    assert UserTimezoneMiddleware(view)(request).status_code == 200
    assert seen == [timezone.get_default_timezone_name()]
