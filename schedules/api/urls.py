from django.urls import path

from schedules.api import views

urlpatterns = [
    path("schedules", views.ScheduleListView.as_view(), name="schedules"),
    path("schedules/<str:schedule_id>", views.ScheduleDetailView.as_view(), name="schedules-detail"),
    path("schedules/<str:schedule_id>/enable", views.ScheduleEnableView.as_view(), name="schedules-enable"),
    path(
        "schedules/<str:schedule_id>/disable", views.ScheduleDisableView.as_view(), name="schedules-disable"
    ),
    path(
        "schedules/<str:schedule_id>/trigger", views.ScheduleTriggerView.as_view(), name="schedules-trigger"
    ),
]
