"""Create a HyperSDK account in a role; print its password and API token once, never again."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api_tokens.service import issue_token
from hypersdk.permissions import ROLE_GROUPS, grant_role


class Command(BaseCommand):
    help = (
        "add NAME --role viewer|operator: create a user in the hypersdk-viewers or "
        "hypersdk-operators group with a generated password and an API token, shown once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["add"])
        parser.add_argument("username")
        parser.add_argument("--role", choices=sorted(ROLE_GROUPS), required=True)

    def handle(self, *args, action: str, username: str, role: str, **options) -> None:
        users = get_user_model()
        if users.objects.filter(**{users.USERNAME_FIELD: username}).exists():
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
