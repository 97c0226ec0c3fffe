"""A libvirt domain for an exported VM: what the converted disks need to boot on KVM.

Plain Python (no Django, no ORM), read by the export pipeline's ``WriteDomain`` and
``DefineDomain`` steps:

- ``networks``: the ``-network-map`` option (vSphere network → libvirt network or bridge);
- ``osinfo``: what osinfo-db knows of the guest OS (virtio drivers or not);
- ``names``: a domain name libvirt and a shell take, from any VM name;
- ``plan``: ``DomainPlan``, every choice the domain makes and why, from the VM's record;
- ``xml``: the plan as libvirt domain XML (https://libvirt.org/formatdomain.html);
- ``validate``: ``virt-xml-validate`` against libvirt's own schema;
- ``define``: ``virsh define`` at an allowed URI, never started.
"""
