"""Finding mail: a search's results, a page at a time, from a query that lives in the URL."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.generic import TemplateView

from webmail.mailstore.base import Folder, SearchHit, SearchResults
from webmail.mailstore.imap import EVERYWHERE_PER_FOLDER
from webmail.search import SearchForm
from webmail.views.base import AccountMixin
from webmail.views.folders import DEFAULT_SORT, SORT_CHOICES, _page_number


@dataclass(frozen=True)
class ResultRow:
    """A message found, as the results list shows it."""

    hit: SearchHit
    url: str
    folder: Folder


class SearchView(AccountMixin, TemplateView):
    """The messages that match the query in the URL; htmx asks for the results alone."""

    template_name = "mail/search.html"

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        target = self.account.delivers_into
        if target is not None:
            # This POP3 account's mail goes into a folder of another account: search there.
            query = request.GET.copy()
            query["folder"] = self.account.pop3_deliver_folder
            return redirect(f"{reverse('webmail:search', args=[target.pk])}?{query.urlencode()}")
        return super().get(request, *args, **kwargs)

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request") and self.request.headers.get("HX-Target") == (
            "message-list"
        ):
            return ["mail/_search_results.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs) -> dict:
        data = self.request.GET
        form = SearchForm(data)
        query = form.query() if form.is_valid() else None
        sort = data.get("sort", DEFAULT_SORT)
        if sort not in SORT_CHOICES:
            sort = DEFAULT_SORT
        reverse_order = data.get("dir", "desc") != "asc"
        results = None
        if query is not None and not query.is_empty:
            results = self.store.search(
                query,
                _page_number(data.get("page")),
                folder=None if query.everywhere else self.folder,
                per_page=settings.MESSAGES_PER_PAGE,
                sort="arrival" if sort == DEFAULT_SORT else sort,
                reverse=reverse_order,
            )
        folders = self.store.folders()
        by_name = {f.name: f for f in folders}
        current_folder = by_name.get(self.folder) or Folder(name=self.folder, delimiter="")
        # The search's own parameters, without its page and order: what every link keeps.
        params = [("folder", self.folder)] + [
            (name, data[name]) for name in form.fields if data.get(name)
        ]
        search_url = reverse("webmail:search", args=[self.account.pk])
        mailbox_url = reverse("webmail:mailbox", args=[self.account.pk])
        direction = "desc" if reverse_order else "asc"
        return super().get_context_data(
            account=self.account,
            accounts=self.accounts,
            folders=folders,
            folder=self.folder,
            current_folder=current_folder,
            search_form=form,
            search_advanced=bool(form.errors) or (query is not None and query.is_advanced),
            query=query,
            description=query.describe() if query is not None else "",
            results=results,
            rows=self._rows(results, by_name),
            per_folder=EVERYWHERE_PER_FOLDER,
            search_params=params,
            list_query=urlencode([*params, ("sort", sort), ("dir", direction)]),
            everywhere_url=f"{search_url}?{urlencode(_scoped(params, SearchForm.SCOPE_ALL))}",
            search_url=search_url,
            clear_url=f"{mailbox_url}?{urlencode({'folder': self.folder})}",
            sort=sort,
            direction=direction,
            sort_choices=SORT_CHOICES,
            **kwargs,
        )

    def _rows(self, results: SearchResults | None, by_name: dict[str, Folder]) -> list[ResultRow]:
        if results is None:
            return []
        compose_url = reverse("webmail:compose", args=[self.account.pk])
        rows = []
        for hit in results.hits:
            folder = by_name.get(hit.folder) or Folder(name=hit.folder, delimiter="")
            uid = hit.summary.uid
            if folder.special_use == "\\Drafts":
                # A draft opens in the editor, as it does from its folder.
                url = f"{compose_url}?{urlencode({'draft': uid})}"
            else:
                url = reverse("webmail:message", args=[self.account.pk, uid])
                url += "?" + urlencode({"folder": hit.folder})
            rows.append(ResultRow(hit=hit, url=url, folder=folder))
        return rows


def _scoped(params: list[tuple[str, str]], scope: str) -> list[tuple[str, str]]:
    """The same search in another scope."""
    return [(name, value) for name, value in params if name != "scope"] + [("scope", scope)]
