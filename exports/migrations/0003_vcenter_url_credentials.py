"""vCenter URLs with ``user:password@``: the credentials move to the username field and the
encrypted password (when those are empty; else they are dropped, the fields win at connect
anyway), and the URL keeps only scheme, host, port and path."""

from urllib.parse import unquote, urlsplit, urlunsplit

from django.db import migrations


def move_url_credentials(apps, schema_editor):
    from hypersdk.lib.encryption import encrypt

    VCenter = apps.get_model("exports", "VCenter")
    for vcenter in VCenter.objects.filter(url__contains="@"):
        raw = vcenter.url if "://" in vcenter.url else f"https://{vcenter.url}"
        parts = urlsplit(raw)
        if "@" not in parts.netloc:
            continue
        if not vcenter.username and parts.username:
            vcenter.username = unquote(parts.username)
        if not vcenter.password_encrypted and parts.password:
            vcenter.password_encrypted = encrypt(unquote(parts.password))
        vcenter.url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        vcenter.save(update_fields=["url", "username", "password_encrypted"])


class Migration(migrations.Migration):
    dependencies = [("exports", "0002_operator_groups")]

    operations = [migrations.RunPython(move_url_credentials, migrations.RunPython.noop)]
