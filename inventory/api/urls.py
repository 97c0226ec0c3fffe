from django.urls import path, register_converter

from inventory.api import views


class InventoryPathConverter:
    """Any text, ``/`` and line breaks included: Django's ``path`` converter (``.+``) stops at a
    line break, which a VM's name may hold (vCenter keeps it)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(InventoryPathConverter, "inventory_path")

urlpatterns = [
    path("vms", views.VMListView.as_view(), name="vms"),
    path("vms/preflight", views.PreflightView.as_view(), name="vms-preflight"),
    # An inventory path holds "/" (a "/" inside a name is "%2f", sent as "%252f").
    path("vms/<inventory_path:ref>", views.VMDetailView.as_view(), name="vms-detail"),
]
