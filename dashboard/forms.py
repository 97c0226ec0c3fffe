"""Forms render the inputs and parse their types; what a job may be is JobSpecSerializer's call."""

from __future__ import annotations

from django import forms

from exports.models import Job

TARGET_CHOICES = [
    ("qcow2", "QCOW2 (Recommended) — KVM/QEMU native format"),
    ("raw", "RAW — Universal raw disk image"),
    ("vdi", "VDI — VirtualBox format"),
]


class ConverterForm(forms.Form):
    # Step 1: export configuration
    vm_path = forms.CharField(
        label="VM Path",
        required=False,  # the job spec says what a VM path must be
        widget=forms.TextInput(attrs={"placeholder": "/datacenter/vm/production/web01", "required": True}),
    )
    output_dir = forms.CharField(
        label="Output Directory",
        required=False,
        help_text="Inside an export root; empty: <vm>-<job id> in the default export root.",
        widget=forms.TextInput(attrs={"placeholder": "/exports/web01"}),
    )
    target_format = forms.ChoiceField(
        label="Target Format", choices=TARGET_CHOICES, initial="qcow2", widget=forms.RadioSelect
    )
    auto_convert = forms.BooleanField(
        label="Auto-convert", required=False, help_text="Convert the disks after the export."
    )
    compress = forms.BooleanField(
        label="Compress",
        required=False,
        help_text="Compress the exported OVA: each disk gzipped inside it, as ovftool does.",
    )
    verify = forms.BooleanField(
        label="Verify", required=False, help_text="Verify checksums after conversion."
    )
    # Step 2: conversion options
    hyper2kvm_path = forms.CharField(
        label="Hyper2KVM Binary Path",
        required=False,
        help_text="Auto-detected if empty; else one of the converters this server is configured with.",
        widget=forms.TextInput(attrs={"placeholder": "/usr/local/bin/hyper2kvm"}),
    )
    conversion_timeout = forms.CharField(
        label="Conversion Timeout (minutes)",
        required=False,
        initial="120",
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    stream_output = forms.BooleanField(
        label="Stream Output",
        required=False,
        initial=True,
        help_text="Stream conversion logs to the dashboard.",
    )


STATUS_CHOICES = [("", "any state"), *[(value, value) for value in Job.Status.values]]


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(label="State", choices=STATUS_CHOICES, required=False)
    vm = forms.CharField(label="VM", required=False, widget=forms.TextInput(attrs={"type": "search"}))
    created_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
