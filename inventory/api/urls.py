from django.urls import path

from inventory.api import views

urlpatterns = [
    path("vms", views.VMListView.as_view(), name="vms"),
    path("vms/preflight", views.PreflightView.as_view(), name="vms-preflight"),
    # <path:>: an inventory path holds "/" (a "/" inside a name is "%2f", sent as "%252f").
    path("vms/<path:ref>", views.VMDetailView.as_view(), name="vms-detail"),
]
