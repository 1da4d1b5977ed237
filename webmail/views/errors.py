"""The page for an error no view handled: a 503 while a part of the service is down.

The database or Redis being restarted is an outage that passes, not a bug: the
person is told to try again in a moment, with the status that says so, instead
of the 500 page. Every other error keeps Django's 500 page.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults
from django.views.decorators.csrf import requires_csrf_token
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Errors that mean the database, the cache or the broker is not answering.
OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, BrokerError)
#: Seconds a client is asked to wait: a restart of one part takes about that long.
RETRY_AFTER = 30


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    if not isinstance(sys.exc_info()[1], OUTAGES):
        return defaults.server_error(request)
    # Rendered without the request: its context processors could need the part that is down.
    page = loader.get_template("503.html").render()
    return HttpResponse(page, status=503, headers={"Retry-After": str(RETRY_AFTER)})
