"""TLS settings shared by every connection to a mail server."""

from __future__ import annotations

import ssl

from webmail.transport.endpoint import Endpoint


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    """A client context for ``endpoint``: certificates verified unless an administrator said not.

    A CA file, when named, is trusted instead of the system's authorities.
    """
    context = ssl.create_default_context(cafile=endpoint.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not endpoint.verify:
        # The order matters: verification cannot be turned off while hostnames are checked.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
