"""The two HyperSDK roles as groups: operators (everything) and viewers (read-only)."""

from django.db import migrations

GROUPS = ("hypersdk-operators", "hypersdk-viewers")


def create_groups(apps, schema_editor):
    group = apps.get_model("auth", "Group")
    for name in GROUPS:
        group.objects.get_or_create(name=name)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("exports", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
