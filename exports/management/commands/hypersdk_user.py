"""HyperSDK accounts: ``add`` one in a role, or issue a ``token`` for one; secrets print once."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api_tokens.service import issue_token
from hypersdk.lib.permissions import ROLE_GROUPS, grant_role


class Command(BaseCommand):
    help = (
        "add NAME --role viewer|operator: create a user in the hypersdk-viewers or "
        "hypersdk-operators group with a generated password and an API token, shown once. "
        "token NAME: a new API token for an existing user, shown once (only its digest is kept)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["add", "token"])
        parser.add_argument("username")
        parser.add_argument("--role", choices=sorted(ROLE_GROUPS))

    def handle(self, *args, action: str, username: str, role: str | None, **options) -> None:
        users = get_user_model()
        existing = users.objects.filter(**{users.USERNAME_FIELD: username}).first()
        if action == "token":
            if existing is None:
                raise CommandError(f"no user named {username!r}")
            self.stdout.write(f"API token: {issue_token(existing)}")
            self.stdout.write("it is shown only once: keep it now")
            return
        if role is None:
            raise CommandError("add needs --role viewer or --role operator")
        if existing is not None:
            raise CommandError(f"a user named {username!r} exists already; not touching it")
        password = secrets.token_urlsafe(18)
        with transaction.atomic():
            user = users.objects.create_user(username, password=password)
            grant_role(user, role)
            token = issue_token(user)
        self.stdout.write(f"created {role} {username}")
        self.stdout.write(f"password: {password}")
        self.stdout.write(f"API token: {token}")
        self.stdout.write("these are shown only once: keep them now")
