"""Move DRF's plaintext tokens (table authtoken_token) to knox digests, then drop that table.

Each existing token keeps working: its digest is computed from the stored key, and the key
itself is gone afterwards. A database that never had DRF's tokens is left as it is.
"""

from django.conf import settings
from django.db import migrations
from knox.crypto import hash_token
from knox.settings import CONSTANTS

LEGACY_TABLE = "authtoken_token"


def hash_legacy_tokens(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    table = schema_editor.quote_name(LEGACY_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {schema_editor.quote_name('key')}, user_id FROM {table}")
        rows = cursor.fetchall()
    AuthToken = apps.get_model("knox", "AuthToken")
    AuthToken.objects.bulk_create(
        [
            AuthToken(
                digest=hash_token(key),
                token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
                user_id=user_id,
                expiry=None,
            )
            for key, user_id in rows
        ],
        ignore_conflicts=True,
    )
    if connection.vendor == "sqlite":
        # Else the dropped table's pages keep the plaintext keys in the file until reused.
        schema_editor.execute("PRAGMA secure_delete = ON")
    schema_editor.execute(f"DROP TABLE {table}")


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop)]
