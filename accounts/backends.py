"""Sign-in with either the username or the e-mail address."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest


def find_person(username: str) -> AbstractBaseUser | None:
    """The person a typed username or e-mail address names, exactly as sign-in finds them.

    The throttle counts by what this returns, so that every spelling the
    database takes for one person (username, address, any case the database
    folds alike) shares one counter.
    """
    user_model = get_user_model()
    manager = user_model._default_manager
    if "@" in username:
        matches = list(manager.filter(email__iexact=username)[:2])
        # An address shared by two people identifies nobody.
        if len(matches) == 1:
            return matches[0]
    try:
        return manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        return None


class UsernameOrEmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs,
    ):
        if username and "@" in username:
            person = find_person(username)
            if person is not None:
                username = person.get_username()
        return super().authenticate(request, username=username, password=password, **kwargs)
