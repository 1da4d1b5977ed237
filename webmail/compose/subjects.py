"""The subject of a reply or of a forwarded message.

Mail programs prefix subjects in their own language ("AW:" in German, "SV:"
in Scandinavian languages, "RE :" and "TR :" in French Outlook, "Re[2]:" in
some others). A reply takes the original's run of reply prefixes off and puts
one "Re:" back; a forward does the same with forward prefixes. Other prefixes
stay: a reply to a forwarded message is "Re: Fwd: ...".
"""

from __future__ import annotations

import re

_COUNTER = r"(?:\s*[\[(]\d{1,4}[\])])?"
_REPLY_PREFIXES_RE = re.compile(
    rf"^(?:\s*(?:re|aw|sv|antw|réf){_COUNTER}\s*\.?\s*:)+\s*", re.IGNORECASE
)
_FORWARD_PREFIXES_RE = re.compile(rf"^(?:\s*(?:fwd|fw|tr|wg){_COUNTER}\s*:)+\s*", re.IGNORECASE)


def reply_subject(subject: str) -> str:
    """``Re: <subject>``, never ``Re: Re: ...``."""
    return f"Re: {_REPLY_PREFIXES_RE.sub('', subject.strip(), count=1)}".rstrip()


def forward_subject(subject: str) -> str:
    """``Fwd: <subject>``, never ``Fwd: Fwd: ...``."""
    return f"Fwd: {_FORWARD_PREFIXES_RE.sub('', subject.strip(), count=1)}".rstrip()
