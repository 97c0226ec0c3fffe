"""``Authorization: Token <token>`` and ``Authorization: Bearer <token>``, checked by digest.

django-rest-knox keeps only a SHA-512 digest of each token (and its first 15 characters to
find the row); the plaintext exists once, when the token is issued.
"""

from __future__ import annotations

from knox.auth import TokenAuthentication as KnoxTokenAuthentication


class TokenAuthentication(KnoxTokenAuthentication):
    """``Authorization: Token <token>``: what the CLIs send."""

    def authenticate_header(self, request) -> str:
        return "Token"


class BearerTokenAuthentication(KnoxTokenAuthentication):
    """The same tokens as ``Authorization: Bearer <token>`` (Prometheus' ``authorization``)."""

    def authenticate_header(self, request) -> str:
        return "Bearer"
