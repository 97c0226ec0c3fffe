"""Issue API tokens and find their user: the one place that knows how tokens are stored."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from knox.models import AuthToken
from rest_framework.exceptions import AuthenticationFailed

from api_tokens.authentication import TokenAuthentication


def issue_token(user: AbstractBaseUser) -> str:
    """A new API token for ``user`` that never expires; the returned string is its only copy."""
    _, token = AuthToken.objects.create(user=user, expiry=None)
    return token


def user_for_token(token: str) -> AbstractBaseUser | None:
    """The active user whose token this is, else None."""
    try:
        user, _ = TokenAuthentication().authenticate_credentials(token.encode())
    except AuthenticationFailed:
        return None
    return user
