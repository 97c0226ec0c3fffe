"""The operators' admin: jobs with their logs (read-only) and a cancel action; vCenters."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from exports import jobs
from exports.models import Job, JobLog, VCenter


class JobLogInline(admin.TabularInline):
    model = JobLog
    fields = ["at", "level", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "vm_path", "status", "progress", "started_at", "duration", "origin"]
    list_filter = ["status", "origin", "vcenter"]
    search_fields = ["id", "vm_path", "output_path"]
    readonly_fields = [field.name for field in Job._meta.fields]
    inlines = [JobLogInline]
    actions = ["cancel_jobs"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False  # jobs are submitted through the API, the CLIs or the dashboard

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        return f"{job.percent:.1f}%" + (f" {job.phase}" if job.phase and not job.is_finished else "")

    @admin.display(description="duration")
    def duration(self, job: Job) -> str:
        seconds = job.duration_seconds
        return "" if seconds is None else f"{seconds:.0f}s"

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset) -> None:
        cancelled = 0
        for job in queryset:
            try:
                jobs.cancel_job(job.id)
                cancelled += 1
            except jobs.JobAlreadyFinished:
                pass
        self.message_user(request, f"cancel requested for {cancelled} job(s)", messages.SUCCESS)


class VCenterForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="stored encrypted; leave empty to keep the current one",
    )

    class Meta:
        model = VCenter
        fields = ["name", "url", "username", "password", "insecure", "ca_bundle"]

    def save(self, commit: bool = True) -> VCenter:
        vcenter = super().save(commit=False)
        if self.cleaned_data.get("password"):
            vcenter.password = self.cleaned_data["password"]
        if commit:
            vcenter.save()
        return vcenter


@admin.register(VCenter)
class VCenterAdmin(admin.ModelAdmin):
    form = VCenterForm
    list_display = ["name", "url", "username", "insecure"]
    search_fields = ["name", "url"]
