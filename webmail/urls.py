from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from webmail.views import (
    actions,
    bulk,
    compose,
    conversations,
    folder_admin,
    folders,
    messages,
    outbox,
    parts,
    search,
    sync,
    trusted,
    unified,
)

mail_patterns = [
    path("", folders.HomeView.as_view(), name="home"),
    path("a/<int:account_id>/", folders.MailboxView.as_view(), name="mailbox"),
    path("all/", unified.UnifiedInboxView.as_view(), name="unified"),
    path("list-mode/", conversations.ListModeView.as_view(), name="list-mode"),
    path(
        "a/<int:account_id>/t/<int:uid>/",
        conversations.ConversationView.as_view(),
        name="conversation",
    ),
    path("a/<int:account_id>/status/", sync.SyncStatusView.as_view(), name="sync-status"),
    path("a/<int:account_id>/check/", sync.CheckMailView.as_view(), name="check-mail"),
    path("a/<int:account_id>/search/", search.SearchView.as_view(), name="search"),
    path("a/<int:account_id>/folders/", folder_admin.ManageFoldersView.as_view(), name="folders"),
    path(
        "a/<int:account_id>/folders/rename/",
        folder_admin.RenameFolderView.as_view(),
        name="folder-rename",
    ),
    path(
        "a/<int:account_id>/folders/delete/",
        folder_admin.DeleteFolderView.as_view(),
        name="folder-delete",
    ),
    path(
        "a/<int:account_id>/folders/subscription/",
        folder_admin.FolderSubscriptionView.as_view(),
        name="folder-subscription",
    ),
    path("a/<int:account_id>/m/<int:uid>/", messages.MessageView.as_view(), name="message"),
    path(
        "a/<int:account_id>/m/<int:uid>/body/",
        messages.MessageBodyView.as_view(),
        name="message-body",
    ),
    path(
        "a/<int:account_id>/m/<int:uid>/source/",
        messages.MessageSourceView.as_view(),
        name="message-source",
    ),
    path(
        "a/<int:account_id>/m/<int:uid>/remote-content/",
        messages.AllowRemoteContentView.as_view(),
        name="allow-remote-content",
    ),
    path(
        "a/<int:account_id>/m/<int:uid>/archive/",
        actions.ArchiveMessageView.as_view(),
        name="message-archive",
    ),
    path(
        "a/<int:account_id>/m/<int:uid>/delete/",
        actions.DeleteMessageView.as_view(),
        name="message-delete",
    ),
    path(
        "a/<int:account_id>/m/<int:uid>/move/",
        actions.MoveMessageView.as_view(),
        name="message-move",
    ),
    # The message list's selection: one POST each, back to the list.
    path("a/<int:account_id>/selection/read/", bulk.MarkReadView.as_view(), name="bulk-mark-read"),
    path(
        "a/<int:account_id>/selection/unread/",
        bulk.MarkUnreadView.as_view(),
        name="bulk-mark-unread",
    ),
    path("a/<int:account_id>/selection/flag/", bulk.FlagView.as_view(), name="bulk-flag"),
    path("a/<int:account_id>/selection/unflag/", bulk.UnflagView.as_view(), name="bulk-unflag"),
    path("a/<int:account_id>/selection/archive/", bulk.ArchiveView.as_view(), name="bulk-archive"),
    path("a/<int:account_id>/selection/junk/", bulk.JunkView.as_view(), name="bulk-junk"),
    path("a/<int:account_id>/selection/delete/", bulk.DeleteView.as_view(), name="bulk-delete"),
    path("a/<int:account_id>/selection/move/", bulk.MoveView.as_view(), name="bulk-move"),
    path("a/<int:account_id>/selection/copy/", bulk.CopyView.as_view(), name="bulk-copy"),
    path("a/<int:account_id>/undo-move/", bulk.UndoMoveView.as_view(), name="bulk-undo"),
    path("a/<int:account_id>/empty-trash/", bulk.EmptyTrashView.as_view(), name="empty-trash"),
    path(
        "a/<int:account_id>/m/<int:uid>/part/<str:part_id>/",
        parts.AttachmentView.as_view(),
        name="attachment",
    ),
    path("inline/<str:token>/", parts.InlinePartView.as_view(), name="inline-part"),
    path("a/<int:account_id>/compose/", compose.ComposeView.as_view(), name="compose"),
    path("a/<int:account_id>/uploads/", compose.UploadView.as_view(), name="upload"),
    path("uploads/<int:pk>/delete/", compose.UploadDeleteView.as_view(), name="upload-delete"),
    path("contacts/", compose.ContactsView.as_view(), name="contacts"),
    path("compose/plain-text/", compose.PlainTextView.as_view(), name="plain-text"),
    path("trusted-senders/", trusted.TrustedSendersView.as_view(), name="trusted-senders"),
    path(
        "trusted-senders/<int:pk>/revoke/",
        trusted.RevokeTrustedSenderView.as_view(),
        name="trusted-sender-revoke",
    ),
    path("a/<int:account_id>/outbox/", outbox.OutboxView.as_view(), name="outbox"),
    path("outbox/<int:pk>/", outbox.OutgoingStatusView.as_view(), name="outgoing-status"),
    path("outbox/<int:pk>/edit/", outbox.OutgoingEditView.as_view(), name="outgoing-edit"),
    path("outbox/<int:pk>/discard/", outbox.OutgoingDiscardView.as_view(), name="outgoing-discard"),
]

urlpatterns = [
    path("", include((mail_patterns, "webmail"))),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
]

# A database or Redis outage answers 503 with a page that says to try again.
handler500 = "webmail.views.errors.server_error"
