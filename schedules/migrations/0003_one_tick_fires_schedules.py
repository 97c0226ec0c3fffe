"""One beat tick fires every schedule: the per-schedule PeriodicTasks (and their crontab rows
nothing else uses) are removed, and each schedule gets the tick's cursor, set to now so nothing
from before the upgrade fires or counts as missed."""

import django.utils.timezone
from django.db import migrations, models

OLD_TASK = "schedules.tasks.fire_schedule"


def remove_per_schedule_tasks(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    tasks = PeriodicTask.objects.filter(task=OLD_TASK)
    crontab_ids = set(tasks.exclude(crontab=None).values_list("crontab_id", flat=True))
    tasks.delete()
    # Tell a running DatabaseScheduler its entries changed (historical models send no signals).
    apps.get_model("django_celery_beat", "PeriodicTasks").objects.update_or_create(
        ident=1, defaults={"last_update": django.utils.timezone.now()}
    )
    CrontabSchedule.objects.filter(id__in=crontab_ids, periodictask__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("schedules", "0002_schedule_failures_and_bounds"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(remove_per_schedule_tasks, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="schedule",
            name="periodic_task",
        ),
        migrations.AddField(
            model_name="schedule",
            name="fired_through",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name="schedulerun",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("started", "Started"),
                    ("skipped", "Skipped"),
                    ("triggered", "Triggered"),
                    ("missed", "Missed"),
                ],
                max_length=16,
            ),
        ),
    ]
