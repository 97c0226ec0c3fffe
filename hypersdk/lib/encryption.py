"""Encryption at rest for stored credentials: vCenter passwords, webhook URLs, headers and secrets.

The key is derived from the Django SECRET_KEY (HYPERSDK_SECRET_KEY): rotating it makes the
stored passwords unreadable, and they must be entered again.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@cache
def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"hypersdk/vcenter-password/" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored password cannot be decrypted: was HYPERSDK_SECRET_KEY changed?") from None
