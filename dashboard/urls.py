from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard import inventory_pages, schedule_pages, views, webhook_pages
from hypersdk.lib.login_throttle import limit_login_attempts

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "ui/login/",
        limit_login_attempts(
            auth_views.LoginView.as_view(template_name="dashboard/login.html", next_page="dashboard:home")
        ),
        name="login",
    ),
    path("ui/logout/", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("ui/overview/jobs/", views.active_jobs, name="active-jobs"),
    path("ui/overview/status/", views.status_panel, name="status"),
    path("ui/jobs/", views.job_list, name="jobs"),
    path("ui/jobs/<str:job_id>/", views.job_detail, name="job"),
    path("ui/jobs/<str:job_id>/live/", views.job_live, name="job-live"),
    path("ui/jobs/<str:job_id>/libvirt-domain.xml", views.job_libvirt_domain, name="job-libvirt-domain"),
    path("ui/jobs/<str:job_id>/actions/", views.job_actions, name="job-actions"),
    path("ui/converter/", views.converter_tab, name="converter"),
    path("ui/converter/hyper2kvm/", views.converter_hint, name="converter-hint"),
    path("ui/converter/preflight/", inventory_pages.converter_preflight, name="converter-preflight"),
    path("ui/inventory/", inventory_pages.inventory_list, name="inventory"),
    # The VM by query string (?ref=<path or moref>): a path may hold any character, "..", "%2f".
    path("ui/inventory/vm/", inventory_pages.vm_detail, name="inventory-vm"),
    path("ui/inventory/suggest/", inventory_pages.vm_suggestions, name="inventory-suggest"),
    path("ui/schedules/", schedule_pages.schedule_list, name="schedules"),
    path("ui/schedules/new/", schedule_pages.schedule_create, name="schedule-create"),
    path("ui/schedules/preview/", schedule_pages.cron_preview, name="schedule-preview"),
    # Before the row actions' pattern, which would take "edit" and "delete" as actions.
    path("ui/schedules/<str:schedule_id>/edit/", schedule_pages.schedule_edit, name="schedule-edit"),
    path("ui/schedules/<str:schedule_id>/delete/", schedule_pages.schedule_delete, name="schedule-delete"),
    path(
        "ui/schedules/<str:schedule_id>/<str:action>/",
        schedule_pages.schedule_action,
        name="schedule-action",
    ),
    path("ui/webhooks/", webhook_pages.webhook_list, name="webhooks"),
    path("ui/webhooks/add/", webhook_pages.webhook_add, name="webhook-add"),
    path("ui/webhooks/<str:webhook_id>/delete/", webhook_pages.webhook_delete, name="webhook-delete"),
    path(
        "ui/webhooks/<str:webhook_id>/deliveries/",
        webhook_pages.webhook_deliveries,
        name="webhook-deliveries",
    ),
    path(
        "ui/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver/",
        webhook_pages.webhook_redeliver,
        name="webhook-redeliver",
    ),
    path("ui/webhooks/<str:webhook_id>/<str:action>/", webhook_pages.webhook_action, name="webhook-action"),
]
