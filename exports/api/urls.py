from django.urls import path

from exports.api import views

urlpatterns = [
    path("jobs/submit", views.JobSubmitView.as_view(), name="jobs-submit"),
    path("jobs/query", views.JobQueryView.as_view(), name="jobs-query"),
    path("jobs/logs/<str:job_id>", views.JobLogsView.as_view(), name="jobs-logs"),
    path("jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="jobs-cancel"),
    path(
        "jobs/<str:job_id>/libvirt-domain", views.JobLibvirtDomainView.as_view(), name="jobs-libvirt-domain"
    ),
    path("jobs/<str:job_id>", views.JobDetailView.as_view(), name="jobs-detail"),
    path("status", views.StatusView.as_view(), name="status"),
    path("health", views.HealthView.as_view(), name="health"),
]
