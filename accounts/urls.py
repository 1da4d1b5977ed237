from django.contrib.auth.views import LogoutView
from django.urls import path

from accounts.views import SignInView

app_name = "accounts"

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    # Django's LogoutView accepts POST only, so a link or an image cannot sign anyone out.
    path("logout/", LogoutView.as_view(), name="logout"),
]
