"""The Inventory page (a vCenter's VMs, searchable and paged), a VM's details, the VM-path
suggestions the converter and schedule form offer as you type, and the converter's live
preflight panel. Thin adapters over ``inventory.service`` and ``inventory.preflight``:
an unknown VM or vCenter is the 404 page (DomainErrorMiddleware); bad parameters are a 400
with the field's error; a vCenter that cannot be read is said in one line (502)."""

from __future__ import annotations

from datetime import datetime
from math import ceil
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework import serializers

from dashboard import converter
from dashboard.forms import ConverterForm
from dashboard.htmx import render_page, role_required, viewers_may_post, wants_partial
from exports.models import VCenter
from exports.pipeline.errors import VCenterConnectionError
from hypersdk.lib.errors import InvalidInput, NotFoundError
from inventory import service
from inventory.records import POWER_STATES

VMS_PER_PAGE = 50  # the API's default page
SUGGESTIONS = 10
MAX_TEXT = 1024  # a VM path's limit in the job spec; longer text matches nothing anyway


def vcenter_choices() -> list[tuple[str, str]]:
    """The vCenter selector's choices: the daemon's default, then each one the admin added."""
    names = VCenter.objects.order_by("name").values_list("name", flat=True)
    return [("", "the daemon's default"), *((name, name) for name in names)]


class InventoryFilterForm(forms.Form):
    """The Inventory page's query string. Types and bounds only: the service judges the rest."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=MAX_TEXT,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "name or path", "spellcheck": "false"}
        ),
    )
    folder = forms.CharField(
        label="Folder",
        required=False,
        strip=False,  # a folder's name may end with a space: "/dc/vm/prod " is not /dc/vm/prod
        max_length=MAX_TEXT,
        widget=forms.TextInput(attrs={"placeholder": "/dc/vm/prod", "spellcheck": "false"}),
    )
    power_state = forms.ChoiceField(
        label="Power", required=False, choices=[("", "any"), *((s, s) for s in POWER_STATES)]
    )
    guest_os = forms.CharField(
        label="Guest OS",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "linux, windows…", "spellcheck": "false"}),
    )
    vcenter = forms.ChoiceField(label="vCenter", required=False)
    page = forms.IntegerField(min_value=1, max_value=1_000_000, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vcenter"].choices = vcenter_choices()

    def filters(self) -> dict[str, Any]:
        """The cleaned data as ``service.list_vms`` keywords."""
        data = self.cleaned_data
        return {
            "vcenter": data["vcenter"] or None,
            "q": data["q"].strip(),
            "folder": data["folder"],
            "power_state": data["power_state"],
            "guest_os": data["guest_os"].strip(),
            "page": data["page"] or 1,
        }


@require_http_methods(["GET", "POST"])
@role_required
@viewers_may_post
def inventory_list(request: HttpRequest) -> HttpResponse:
    """The page, or (htmx) the table alone, as the filters are typed (the query string). A POST
    (the page's Refresh: CSRF-protected, so no other site can make a viewer's browser send it)
    reads the vCenter again, coalesced with other refreshes (inventory.service), then shows the
    page it was on (303 to the GET). A page past the last shows the last, as the other lists do."""
    form = InventoryFilterForm(request.GET)
    refresh = request.method == "POST"
    context: dict[str, Any] = {
        "tab": "inventory",
        "form": form,
        "vm_page": None,
        "error": "",
        "refresh_query": _query(request, drop=("page", "refresh")),
    }
    status = 200
    if not form.is_valid():
        status = 400
    else:
        filters = form.filters()
        try:
            vm_page = service.list_vms(**filters, page_size=VMS_PER_PAGE, refresh=refresh)
            last = max(1, ceil(vm_page.count / VMS_PER_PAGE))
            if vm_page.page > last:  # from the list just read: no second read of vCenter
                filters["page"] = last
                vm_page = service.list_vms(**filters, page_size=VMS_PER_PAGE)
        except InvalidInput as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = 400
        except VCenterConnectionError as exc:
            context["error"] = f"Cannot read the inventory: {exc}"
            status = 502
        else:
            context.update(_page_context(vm_page, filters), query=_query(request, drop=("page", "refresh")))
    if refresh and status == 200:
        return HttpResponseRedirect(
            f"{reverse('dashboard:inventory')}?{_query(request, drop=('refresh',))}", status=303
        )
    # An htmx request swaps only 2xx/422 answers (base.html): say a vCenter failure in the table.
    if status == 502 and wants_partial(request):
        status = 200
    response = render_page(
        request,
        "dashboard/inventory.html",
        context,
        partial="dashboard/partials/inventory_table.html",
        status=status,
    )
    if wants_partial(request) and status == 200:
        # The address bar keeps the filters and page, never refresh=1 (a reload would re-read).
        response["HX-Push-Url"] = f"{reverse('dashboard:inventory')}?{_query(request, drop=('refresh',))}"
    return response


def _page_context(vm_page, filters: dict[str, Any]) -> dict[str, Any]:
    pages = max(1, ceil(vm_page.count / vm_page.page_size)) if vm_page.page_size else 1
    return {
        "vm_page": vm_page,
        "vms": vm_page.results,
        "pages": pages,
        "previous_page": vm_page.page - 1 if vm_page.page > 1 else None,
        "next_page": vm_page.page + 1 if vm_page.page < pages else None,
        "cached_at": _parse_time(vm_page.cached_at),
        "vcenter": filters["vcenter"] or "",
    }


def _query(request: HttpRequest, drop: tuple[str, ...]) -> str:
    query = request.GET.copy()
    for name in drop:
        query.pop(name, None)
    return query.urlencode()


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


class VMRefForm(forms.Form):
    """A VM's details page's query string: its inventory path (or moref) and vCenter."""

    ref = forms.CharField(max_length=MAX_TEXT, strip=False)
    vcenter = forms.CharField(max_length=100, required=False)

    def clean_ref(self) -> str:
        ref = self.cleaned_data["ref"]
        if not ref.strip() or "\0" in ref:
            raise forms.ValidationError("give the VM's inventory path or moref")
        return ref


@require_GET
@role_required
def vm_detail(request: HttpRequest) -> HttpResponse:
    """Every field inventory.records.VMRecord holds, for one VM. An unknown VM or vCenter is the
    404 page; a missing or malformed ``ref`` a 400."""
    form = VMRefForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in form.errors.items())
        return render(
            request, "dashboard/inventory_bad_request.html", {"tab": "inventory", "error": errors}, status=400
        )
    vcenter = form.cleaned_data["vcenter"] or None
    try:
        vm = service.get_vm(
            form.cleaned_data["ref"], vcenter=vcenter, refresh=request.GET.get("refresh") == "1"
        )
    except InvalidInput as exc:
        return render(
            request,
            "dashboard/inventory_bad_request.html",
            {"tab": "inventory", "error": str(exc)},
            status=400,
        )
    except VCenterConnectionError as exc:
        return render(
            request,
            "dashboard/inventory_bad_request.html",
            {"tab": "inventory", "error": f"Cannot read the inventory: {exc}"},
            status=502,
        )
    return render(
        request, "dashboard/inventory_vm.html", {"tab": "inventory", "vm": vm, "vcenter": vcenter or ""}
    )


@require_GET
@role_required
def vm_suggestions(request: HttpRequest) -> HttpResponse:
    """The VM-path typeahead's options (an HTML fragment of ``role=option`` items): up to ten
    VMs whose name or path holds what was typed in ``vm_path``, in the ``vcenter`` chosen."""
    text = request.GET.get("vm_path", "").strip()
    vcenter = request.GET.get("vcenter", "").strip() or None
    context: dict[str, Any] = {"text": text, "vms": [], "error": "", "count": 0}
    if len(text) > MAX_TEXT or "\0" in text:
        context["error"] = "not a VM path"
        return render(request, "dashboard/partials/vm_suggestions.html", context, status=400)
    if text:
        try:
            found = service.list_vms(vcenter=vcenter, q=text, page_size=SUGGESTIONS)
        except InvalidInput as exc:
            context["error"] = str(exc)
            return render(request, "dashboard/partials/vm_suggestions.html", context, status=400)
        except NotFoundError as exc:  # a vCenter deleted (or never added): said beside the field
            context["error"] = f"{exc}: choose another vCenter"
            # htmx swaps only 2xx answers (base.html), as for the table's vCenter failures.
            status = 200 if wants_partial(request) else 404
            return render(request, "dashboard/partials/vm_suggestions.html", context, status=status)
        except VCenterConnectionError as exc:
            context["error"] = f"cannot read the inventory: {exc}"
        else:
            context.update(vms=found.results, count=found.count)
    return render(request, "dashboard/partials/vm_suggestions.html", context)


@require_POST
@role_required
def converter_preflight(request: HttpRequest) -> HttpResponse:
    """The converter's preflight panel: what would go wrong with the job the form describes
    now (inventory.preflight), asked again as the VM path and options change. A form the job
    spec refuses shows its field errors instead; an empty VM path asks for one."""
    form = ConverterForm(request.POST)
    context: dict[str, Any] = {"report": None, "errors": [], "asked": False}
    if not form.is_valid():
        context["errors"] = [f"{name}: {' '.join(msgs)}" for name, msgs in form.errors.items()]
    elif form.cleaned_data["vm_path"].strip():
        context["asked"] = True
        from inventory.preflight import preflight_spec

        try:
            context["report"] = preflight_spec(converter.job_spec(form.cleaned_data), origin="dashboard")
        except serializers.ValidationError as exc:
            context["errors"] = _flat_errors(exc.detail)
        except InvalidInput as exc:
            context["errors"] = [str(exc)]
    return render(request, "dashboard/partials/preflight.html", context)


def _flat_errors(detail: Any, prefix: str = "") -> list[str]:
    """DRF's error detail (dict/list nesting) as ``field: message`` lines."""
    if isinstance(detail, dict):
        return [line for name, inner in detail.items() for line in _flat_errors(inner, f"{name}: ")]
    if isinstance(detail, list):
        return [line for inner in detail for line in _flat_errors(inner, prefix)]
    return [f"{prefix}{detail}"]
