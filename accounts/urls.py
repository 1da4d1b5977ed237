from django.contrib.auth.views import LogoutView
from django.urls import path

from accounts.views import (
    IdentitiesView,
    IdentityCreateView,
    IdentityDeleteView,
    IdentityUpdateView,
    SignInView,
)

app_name = "accounts"

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    # Django's LogoutView accepts POST only, so a link or an image cannot sign anyone out.
    path("logout/", LogoutView.as_view(), name="logout"),
    path("identities/", IdentitiesView.as_view(), name="identities"),
    path("identities/add/<int:account_id>/", IdentityCreateView.as_view(), name="identity-add"),
    path("identities/<int:pk>/edit/", IdentityUpdateView.as_view(), name="identity-edit"),
    path("identities/<int:pk>/delete/", IdentityDeleteView.as_view(), name="identity-delete"),
]
