"""Driving the compose form through Django's test client, as a browser would."""

from __future__ import annotations

from html.parser import HTMLParser

from django.urls import reverse


def compose_url(account, **query) -> str:
    url = reverse("webmail:compose", args=[account.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def form_fields(client, url: str) -> dict[str, str]:
    """The compose form's fields as the page fills them, as a browser would post them."""
    response = client.get(url)
    assert response.status_code == 200
    fields: dict[str, str] = {}

    class Reader(HTMLParser):
        textarea: str | None = None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            name = attrs.get("name")
            if tag == "input" and name and attrs.get("type") not in ("file", "submit", "button"):
                if name in ("attachments", "carried"):
                    fields.setdefault(name, []).append(attrs.get("value", ""))
                else:
                    fields[name] = attrs.get("value") or ""
            elif tag == "select" and name:
                self.select = name
            elif tag == "option" and "selected" in attrs:
                fields[self.select] = attrs["value"]
            elif tag == "textarea" and name:
                self.textarea = name
                fields[name] = ""

        def handle_data(self, data):
            if self.textarea:
                fields[self.textarea] += data

        def handle_endtag(self, tag):
            if tag == "textarea":
                self.textarea = None

    Reader().feed(response.content.decode())
    fields.pop("csrfmiddlewaretoken", None)
    return fields
