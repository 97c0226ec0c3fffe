"""HyperSDK: export VMs from vSphere, record an Artifact Manifest, convert them for KVM."""

__version__ = "0.2.0"
