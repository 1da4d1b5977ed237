"""A private, real mail server for the test suite and the demo.

``LocalMailServer`` (in ``server``) runs Debian's Dovecot (IMAP, POP3, LMTP)
and Postfix (SMTP and authenticated submission) under a folder of its own, on
loopback high ports, with a throwaway certificate authority from ``tls``.
``demo`` fills it with realistic mail for people to try Facteur with.
"""

from .server import LocalMailServer, LocalMailServerError

__all__ = ["LocalMailServer", "LocalMailServerError"]
