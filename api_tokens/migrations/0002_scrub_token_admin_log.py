"""Scrub DRF's plaintext tokens from the admin's history.

The admin logged each DRF token it added, changed or deleted with the token itself as the
object's id and name (``django_admin_log.object_id``/``object_repr``). 0001 dropped the token
table; these rows would still hand a copy of the database live tokens (0001 keeps them working).
The rows stay (who did what, when), with the token replaced.
"""

from django.db import migrations

# DRF's authtoken models: Token, and TokenProxy (its admin's model since DRF 3.12).
TOKEN_MODELS = ("token", "tokenproxy")
SCRUBBED = "API token (removed at upgrade)"


def scrub_token_log_entries(apps, schema_editor) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    LogEntry = apps.get_model("admin", "LogEntry")
    token_types = ContentType.objects.filter(app_label="authtoken", model__in=TOKEN_MODELS)
    if schema_editor.connection.vendor == "sqlite":
        # Else the rewritten rows' old cells keep the keys in the file until reused.
        schema_editor.execute("PRAGMA secure_delete = ON")
    LogEntry.objects.filter(content_type__in=token_types).update(object_id=None, object_repr=SCRUBBED)


class Migration(migrations.Migration):
    dependencies = [
        ("api_tokens", "0001_hash_legacy_tokens"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(scrub_token_log_entries, migrations.RunPython.noop)]
