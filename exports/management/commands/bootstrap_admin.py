"""Create the first superuser, ``admin``, and its API token; print the secrets once, never again."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api_tokens.service import issue_token
from exports.start_checks import run_start_checks
from hypersdk.lib.env import env_str

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create the superuser 'admin' with an API token if no superuser exists. The password comes "
        "from HYPERSDK_ADMIN_PASSWORD(_FILE), else it is generated and printed once."
    )

    def handle(self, *args, **options):
        # The database about to hold the admin's credentials must not be readable by others.
        run_start_checks(self)
        users = get_user_model()
        existing = users.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            self.stdout.write(f"an admin user exists ({existing.get_username()}); nothing to do")
            return
        if users.objects.filter(**{users.USERNAME_FIELD: ADMIN_USERNAME}).exists():
            # Promoting someone else's account and resetting its password would be a surprise.
            raise CommandError(
                f"a user named {ADMIN_USERNAME!r} exists but is not a superuser; not touching it"
            )

        given = env_str("HYPERSDK_ADMIN_PASSWORD")
        password = given or secrets.token_urlsafe(18)
        with transaction.atomic():
            user = users.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
            token = issue_token(user)

        self.stdout.write(f"created superuser {ADMIN_USERNAME}")
        if given:
            self.stdout.write("password: the one in HYPERSDK_ADMIN_PASSWORD")
        else:
            self.stdout.write(f"password: {password}")
        self.stdout.write(f"API token: {token}")
        self.stdout.write("these are shown only once: keep them now")
