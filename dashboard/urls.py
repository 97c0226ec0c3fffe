from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard import views
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
    path("ui/jobs/<str:job_id>/actions/", views.job_actions, name="job-actions"),
    path("ui/converter/", views.converter_tab, name="converter"),
    path("ui/converter/hyper2kvm/", views.converter_hint, name="converter-hint"),
    path("ui/schedules/", views.schedule_list, name="schedules"),
    path("ui/schedules/<str:schedule_id>/<str:action>/", views.schedule_action, name="schedule-action"),
    path("ui/webhooks/", views.webhook_list, name="webhooks"),
    path("ui/webhooks/<str:webhook_id>/<str:action>/", views.webhook_action, name="webhook-action"),
]
