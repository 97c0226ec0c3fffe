"""The Schedules page: list, create, edit, delete, enable/disable, run now, and the cron preview.
Thin adapters: ScheduleSpecSerializer judges a schedule as it does for the API, and
schedules.service stores it. An unknown schedule is the 404 page (DomainErrorMiddleware)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.timezone import now
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework import serializers

from dashboard.forms import SCHEDULE_FIELD_OF, ScheduleForm
from dashboard.htmx import render_page, role_required, row_action, row_after_action, wants_partial
from schedules import cron
from schedules import service as schedules
from schedules.models import Schedule
from schedules.spec import ScheduleSpecSerializer

SCHEDULES_PER_PAGE = 50  # the API's default page
PREVIEW_RUNS = 5


@require_GET
@role_required
def schedule_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(schedules.list_schedules(), SCHEDULES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"tab": "schedules", "page": page, "schedules": page.object_list}
    return render_page(request, "dashboard/schedules.html", context)


SCHEDULE_ACTIONS = {"enable", "disable", "trigger"}


@row_action(SCHEDULE_ACTIONS)
def schedule_action(request: HttpRequest, schedule_id: str, action: str) -> HttpResponse:
    notice, started = "", None
    try:
        if action == "trigger":
            started = schedules.trigger(schedule_id)
            notice = f"Started {started.id}."
        else:
            schedules.set_enabled(schedule_id, action == "enable")
        schedule = schedules.get_schedule(schedule_id)
    except schedules.ScheduleCannotRun as exc:  # a template that became invalid (a vCenter deleted since)
        schedule, notice = schedules.get_schedule(schedule_id), str(exc)
    return row_after_action(
        request,
        notice=notice,
        back_to="dashboard:schedules",
        template="dashboard/schedules.html",
        row="dashboard/partials/schedule_row.html",
        context={"tab": "schedules", "schedule": schedule, "notice": notice, "started": started},
    )


@require_http_methods(["GET", "POST"])
@role_required
def schedule_create(request: HttpRequest) -> HttpResponse:
    # Bound on every POST, even an empty one (or a JSON body, which fills no request.POST):
    # refused with field errors, not answered with a blank form.
    form = ScheduleForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        schedule = save(form)
        if schedule is not None:
            return _back_to_list(request, f"Created schedule {schedule.name}.")
    return _form_page(request, form, schedule=None)


@require_http_methods(["GET", "POST"])
@role_required
def schedule_edit(request: HttpRequest, schedule_id: str) -> HttpResponse:
    schedule = schedules.get_schedule(schedule_id)
    form = ScheduleForm(
        request.POST if request.method == "POST" else None, initial=ScheduleForm.initial_of(schedule)
    )
    if request.method == "POST" and form.is_valid():
        saved = save(form, schedule)
        if saved is not None:
            return _back_to_list(request, f"Saved schedule {saved.name}.")
    return _form_page(request, form, schedule=schedule)


@require_http_methods(["GET", "POST"])
@role_required
def schedule_delete(request: HttpRequest, schedule_id: str) -> HttpResponse:
    """GET: the confirmation page (without JavaScript); POST: delete. htmx asks in the browser
    (hx-confirm) and then removes the row: the answer is empty."""
    schedule = schedules.get_schedule(schedule_id)
    if request.method == "GET":
        return render_page(
            request, "dashboard/schedule_delete.html", {"tab": "schedules", "schedule": schedule}
        )
    schedules.delete_schedule(schedule.id)
    if wants_partial(request):
        return HttpResponse("")
    messages.info(request, f"Deleted schedule {schedule.name}.")
    return redirect("dashboard:schedules")


@require_GET
@role_required
def cron_preview(request: HttpRequest) -> HttpResponse:
    """The expression read in words and its next runs in the schedule's zone, or the one-line
    reason it is refused (422, which htmx swaps in: base.html)."""
    expression = request.GET.get("cron", "").strip()
    tz_name = request.GET.get("timezone", "").strip() or settings.TIME_ZONE
    context = {"expression": expression, "timezone": tz_name, "runs": [], "error": ""}
    too_long = _too_long(cron=expression, timezone=tz_name)
    if too_long:
        context["error"] = too_long
    elif expression:
        try:
            # Formatted here: the |date filter would show them in the server's zone.
            context["runs"] = [
                (run.isoformat(), f"{run:%a %Y-%m-%d %H:%M %z}")
                for run in cron.upcoming(expression, tz_name, now(), PREVIEW_RUNS)
            ]
            context["description"] = cron.describe(expression)
        except cron.InvalidCron as exc:
            context["error"] = str(exc)
    status = 422 if context["error"] else 200
    return render_page(
        request,
        "dashboard/partials/cron_preview.html",
        context,
        partial="dashboard/partials/cron_preview.html",
        status=status,
    )


def _too_long(**values: str) -> str:
    """The schedule's column limits (as the API's serializer has them), checked before the
    cron engine sees the text: an error message repeats what was typed."""
    for name, value in values.items():
        limit = Schedule._meta.get_field(name).max_length
        if len(value) > limit:
            return f"{name}: at most {limit} characters"
    return ""


def save(form: ScheduleForm, schedule: Schedule | None = None) -> Schedule | None:
    """Create (or change ``schedule``) through the API's serializer and the schedule service;
    on refusal put the serializer's errors on the form's fields and return None."""
    spec = ScheduleSpecSerializer(
        schedule, data=form.spec(), partial=schedule is not None, context={"surface": "dashboard"}
    )
    try:
        spec.is_valid(raise_exception=True)
    except serializers.ValidationError as exc:
        for name, problems in exc.detail.items():
            field = SCHEDULE_FIELD_OF.get(name)
            for problem in problems if isinstance(problems, list) else [problems]:
                named = field or name == "non_field_errors"
                form.add_error(field, str(problem) if named else f"{name}: {problem}")
        return None
    if schedule is None:
        return schedules.create_schedule(spec.validated_data)
    return schedules.update_schedule(schedule, spec.validated_data)


def _form_page(request: HttpRequest, form: ScheduleForm, *, schedule: Schedule | None) -> HttpResponse:
    context = {"tab": "schedules", "form": form, "schedule": schedule}
    return render_page(
        request,
        "dashboard/schedule_form.html",
        context,
        partial="dashboard/partials/schedule_form.html",
        status=422 if form.errors else 200,  # htmx is configured to swap 422 (base.html)
    )


def _back_to_list(request: HttpRequest, notice: str) -> HttpResponse:
    """After a save: the list, with ``notice``; htmx is told to go there (a full page load)."""
    messages.info(request, notice)
    if wants_partial(request):
        response = HttpResponse(status=200)
        response["HX-Redirect"] = reverse("dashboard:schedules")
        return response
    return redirect("dashboard:schedules")
