"""The dashboard's pages: thin adapters over the job service (the Schedules and Webhooks pages
are dashboard.schedule_pages and dashboard.webhook_pages). A job that does not exist is the 404
page (hypersdk.lib.errors.DomainErrorMiddleware)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from dashboard import converter, job_view, overview
from dashboard.forms import ConverterForm, JobFilterForm
from dashboard.htmx import render_page, role_required, wants_partial
from exports import domain_file, jobs
from exports.daemon_status import daemon_status

JOBS_PER_PAGE = 25
PREFILLED = ("vm_path", "vcenter")  # the converter's fields a link may fill in


@require_GET
@role_required
def home(request: HttpRequest) -> HttpResponse:
    return render_page(request, "dashboard/home.html", {"tab": "dashboard", **overview.overview()})


@require_GET
@role_required
def active_jobs(request: HttpRequest) -> HttpResponse:
    # The fragment also carries the Daemon card's running count (out of band): one response.
    context = {"tab": "dashboard", **overview.overview(), "daemon_oob": wants_partial(request)}
    return render_page(
        request, "dashboard/home.html", context, partial="dashboard/partials/overview_jobs.html"
    )


@require_GET
@role_required
def status_panel(request: HttpRequest) -> HttpResponse:
    return render_page(
        request,
        "dashboard/home.html",
        {"tab": "dashboard", **overview.overview(), "status": daemon_status(ping_timeout=0.5)},
        partial="dashboard/partials/daemon_status.html",
    )


@require_GET
@role_required
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    page = Paginator(job_view.filtered_jobs(filters), JOBS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"tab": "jobs", "form": form, "page": page, "query": query.urlencode()}
    return render_page(request, "dashboard/jobs.html", context, partial="dashboard/partials/job_table.html")


@require_GET
@role_required
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    context = {"tab": "jobs", **job_view.job_page(jobs.get_job(job_id))}
    return render_page(request, "dashboard/job.html", context, partial="dashboard/partials/job_result.html")


@require_GET
@role_required
def job_libvirt_domain(request: HttpRequest, job_id: str) -> HttpResponse:
    """The job's domain XML as a download; the 404 page for anything but its own file."""
    return domain_file.as_download(domain_file.read_domain_file(jobs.get_job(job_id)))


@require_GET
@role_required
def job_live(request: HttpRequest, job_id: str) -> HttpResponse:
    """The live panel (status, progress, logs): htmx polls it when no websocket is open."""
    job = jobs.get_job(job_id)
    show_logs = request.GET.get("logs") == "1"
    context = {"tab": "jobs", "job": job, "show_logs": show_logs}
    if show_logs:
        context["logs"] = jobs.job_logs(job.id, tail=job_view.LOG_TAIL)
    return render_page(
        request, "dashboard/job_live.html", context, partial="dashboard/partials/job_live.html"
    )


@require_http_methods(["GET", "POST"])
@role_required
def job_actions(request: HttpRequest, job_id: str) -> HttpResponse:
    """GET: the actions bar; POST: cancel the job, then show it again."""
    job = jobs.get_job(job_id)
    notice = ""
    if request.method == "POST":
        try:
            job = jobs.cancel_job(job_id)
            notice = (
                "Cancelled." if job.is_finished else "Cancel requested: the worker is stopping the export."
            )
        except jobs.JobAlreadyFinished as exc:
            job, notice = exc.job, f"Nothing to cancel: the job is already {exc.job.status}."
        if not wants_partial(request):
            messages.info(request, notice)
            return redirect("dashboard:job", job_id=job.id)
    return render_page(
        request,
        "dashboard/job.html",
        {"tab": "jobs", **job_view.job_page(job), "notice": notice},
        partial="dashboard/partials/job_actions.html",
    )


@require_http_methods(["GET", "POST"])
@role_required
def converter_tab(request: HttpRequest) -> HttpResponse:
    """The Manifest Converter: the form, then the job it started (status, progress, logs)."""
    job, follow_url = None, ""
    if request.method == "POST":
        form = ConverterForm(request.POST)
        job_id = converter.submit(form) if form.is_valid() else None
        stream = form.cleaned_data.get("stream_output", False)
        if job_id:
            follow_url = f"{reverse('dashboard:converter')}?job={job_id}&stream={int(stream)}"
            if not wants_partial(request):
                return redirect(follow_url)
            job = jobs.get_job(job_id)
    else:
        # "Export…" on the Inventory page opens the form with the VM's path (and vCenter) filled in.
        form = ConverterForm(initial={name: request.GET[name] for name in PREFILLED if name in request.GET})
        stream = request.GET.get("stream", "1") == "1"
        if request.GET.get("job"):
            job = jobs.get_job(request.GET["job"])
    context = {
        "tab": "converter",
        "form": form,
        "job": job,
        "show_logs": stream,
        "logs": jobs.job_logs(job.id, tail=job_view.LOG_TAIL) if job and stream else [],
        "converter_choice": converter.converter_for(form["hyper2kvm_path"].value() or ""),
    }
    response = render_page(
        request,
        "dashboard/converter.html",
        context,
        partial="dashboard/partials/converter.html",
        status=422 if form.errors else 200,  # htmx is configured to swap 422 (base.html)
    )
    if follow_url:
        response["HX-Push-Url"] = follow_url
    return response


@require_GET
@role_required
def converter_hint(request: HttpRequest) -> HttpResponse:
    """What the converter would run with the hyper2kvm path as typed (htmx asks as you type)."""
    choice = converter.converter_for(request.GET.get("hyper2kvm_path", ""))
    return render(request, "dashboard/partials/converter_hint.html", {"choice": choice})
