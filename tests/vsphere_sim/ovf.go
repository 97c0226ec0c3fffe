package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// createDescriptor implements OvfManager.CreateDescriptor for a VM: an OVF
// 1.x envelope with one File per cdp.ovfFiles entry, one Disk per virtual
// disk, and the VM's CPU, memory, controllers, disks and NICs.
func createDescriptor(req *types.CreateDescriptor) (*types.OvfCreateDescriptorResult, types.BaseMethodFault) {
	vm := findVM(req.Obj)
	if vm == nil {
		return nil, &types.ManagedObjectNotFound{Obj: req.Obj}
	}
	var doc string
	var fault types.BaseMethodFault
	simulator.Map.WithLock(vm, func() { doc, fault = ovfEnvelope(req.Obj, vm, req.Cdp) })
	if fault != nil {
		return nil, fault
	}
	return &types.OvfCreateDescriptorResult{OvfDescriptor: doc, IncludeImageFiles: types.NewBool(false)}, nil
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), `"`, "&quot;")
}

// ovfEnvelope renders the descriptor. Caller holds the VM lock.
func ovfEnvelope(ref types.ManagedObjectReference, vm *simulator.VirtualMachine, cdp types.OvfCreateDescriptorParams) (string, types.BaseMethodFault) {
	name := vm.Name
	if cdp.Name != "" {
		name = cdp.Name
	}
	hw := vm.Config.Hardware
	devices := hw.Device

	var disks []*types.VirtualDisk
	for _, d := range devices {
		// What the export lease leaves out (RDMs, independent disks) the descriptor does too.
		if disk, ok := d.(*types.VirtualDisk); ok && !leftOutByExport(disk) {
			disks = append(disks, disk)
		}
	}
	// Match ovfFiles to devices by deviceId (the lease deviceUrl key), as
	// vCenter does: a file whose deviceId fits no device of the VM, or a
	// device named twice, is refused, never matched by position.
	fileFor := make(map[int]int) // disk index -> ovfFiles index
	nvramFileIndex := -1
	keys := make(map[string]int) // deviceUrl key -> disk index (-1: nvram)
	for i, disk := range disks {
		keys[deviceKey(ref, devices, disk)] = i
	}
	keys[nvramKey(ref)] = -1
	for j, f := range cdp.OvfFiles {
		i, ok := keys[f.DeviceId]
		if !ok {
			return "", &types.InvalidArgument{InvalidProperty: fmt.Sprintf("cdp.ovfFiles[%d].deviceId", j)}
		}
		delete(keys, f.DeviceId)
		if i < 0 {
			nvramFileIndex = j
		} else {
			fileFor[i] = j
		}
	}

	var b strings.Builder
	w := func(format string, a ...interface{}) { fmt.Fprintf(&b, format, a...) }
	w(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	w(`<Envelope vmw:buildId="build-15952498" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` + "\n")
	w("  <References>\n")
	for j, f := range cdp.OvfFiles {
		w(`    <File ovf:href="%s" ovf:id="file%d" ovf:size="%d"/>`+"\n", esc(f.Path), j+1, f.Size)
	}
	w("  </References>\n")

	w("  <DiskSection>\n    <Info>Virtual disk information</Info>\n")
	for i, disk := range disks {
		capacity := disk.CapacityInBytes
		if capacity == 0 {
			capacity = disk.CapacityInKB * 1024
		}
		fileRef := ""
		populated := int64(0)
		if j, ok := fileFor[i]; ok {
			fileRef = fmt.Sprintf(` ovf:fileRef="file%d"`, j+1)
			populated = cdp.OvfFiles[j].PopulatedSize
		}
		pop := ""
		if populated > 0 {
			pop = fmt.Sprintf(` ovf:populatedSize="%d"`, populated)
		}
		w(`    <Disk ovf:capacity="%d" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk%d"%s ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"%s/>`+"\n",
			capacity, i+1, fileRef, pop)
	}
	w("  </DiskSection>\n")

	networks := map[string]bool{}
	var netOrder []string
	for _, d := range devices {
		if nic, ok := d.(types.BaseVirtualEthernetCard); ok {
			n := nicNetwork(nic)
			if !networks[n] {
				networks[n] = true
				netOrder = append(netOrder, n)
			}
		}
	}
	if len(netOrder) > 0 {
		w("  <NetworkSection>\n    <Info>The list of logical networks</Info>\n")
		for _, n := range netOrder {
			w(`    <Network ovf:name="%s">`+"\n      <Description>The %s network</Description>\n    </Network>\n", esc(n), esc(n))
		}
		w("  </NetworkSection>\n")
	}

	w(`  <VirtualSystem ovf:id="%s">`+"\n", esc(name))
	w("    <Info>A virtual machine</Info>\n")
	w("    <Name>%s</Name>\n", esc(name))
	w(`    <OperatingSystemSection ovf:id="1" vmw:osType="%s">`+"\n      <Info>The kind of installed guest operating system</Info>\n    </OperatingSystemSection>\n", esc(vm.Config.GuestId))
	w("    <VirtualHardwareSection>\n      <Info>Virtual hardware requirements</Info>\n")
	w("      <System>\n        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n        <vssd:InstanceID>0</vssd:InstanceID>\n")
	w("        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>\n", esc(name))
	version := vm.Config.Version
	if version == "" {
		version = "vmx-13"
	}
	w("        <vssd:VirtualSystemType>%s</vssd:VirtualSystemType>\n      </System>\n", esc(version))

	// Each item gets the next InstanceID; its rasd elements are an xs:sequence, alphabetical.
	instance := 0
	item := func(fields ...string) int {
		instance++
		type rasd struct{ name, value string }
		elements := []rasd{{"InstanceID", fmt.Sprint(instance)}}
		for i := 0; i+1 < len(fields); i += 2 {
			elements = append(elements, rasd{fields[i], fields[i+1]})
		}
		sort.SliceStable(elements, func(a, b int) bool { return elements[a].name < elements[b].name })
		w("      <Item>\n")
		for _, e := range elements {
			w("        <rasd:%s>%s</rasd:%s>\n", e.name, esc(e.value), e.name)
		}
		w("      </Item>\n")
		return instance
	}
	item("AllocationUnits", "hertz * 10^6",
		"Description", "Number of Virtual CPUs",
		"ElementName", fmt.Sprintf("%d virtual CPU(s)", hw.NumCPU),
		"ResourceType", "3",
		"VirtualQuantity", fmt.Sprint(hw.NumCPU))
	item("AllocationUnits", "byte * 2^20",
		"Description", "Memory Size",
		"ElementName", fmt.Sprintf("%dMB of memory", hw.MemoryMB),
		"ResourceType", "4",
		"VirtualQuantity", fmt.Sprint(hw.MemoryMB))

	// Controllers first, remembering their InstanceIDs for the disks.
	controllerID := map[int32]int{}
	for _, d := range devices {
		dev := d.GetVirtualDevice()
		var rtype, subtype, label string
		switch d.(type) {
		case *types.VirtualLsiLogicController:
			rtype, subtype, label = "6", "lsilogic", "SCSI Controller"
		case *types.VirtualLsiLogicSASController:
			rtype, subtype, label = "6", "lsilogicsas", "SCSI Controller"
		case *types.ParaVirtualSCSIController:
			rtype, subtype, label = "6", "VirtualSCSI", "SCSI Controller"
		case *types.VirtualBusLogicController:
			rtype, subtype, label = "6", "buslogic", "SCSI Controller"
		case *types.VirtualAHCIController:
			rtype, subtype, label = "20", "vmware.sata.ahci", "SATA Controller"
		case *types.VirtualNVMEController:
			rtype, subtype, label = "20", "vmware.nvme.controller", "NVME Controller"
		case *types.VirtualIDEController:
			rtype, label = "5", "IDE Controller"
		default:
			continue
		}
		bus := d.(types.BaseVirtualController).GetVirtualController().BusNumber
		fields := []string{
			"Address", fmt.Sprint(bus),
			"Description", fmt.Sprintf("%s %d", label, bus),
			"ElementName", fmt.Sprintf("%s %d", label, bus),
		}
		if subtype != "" {
			fields = append(fields, "ResourceSubType", subtype)
		}
		controllerID[dev.Key] = item(append(fields, "ResourceType", rtype)...)
	}
	for i, disk := range disks {
		unit := int32(0)
		if disk.UnitNumber != nil {
			unit = *disk.UnitNumber
		}
		fields := []string{"AddressOnParent", fmt.Sprint(unit),
			"ElementName", diskLabel(disk, i),
			"HostResource", fmt.Sprintf("ovf:/disk/vmdisk%d", i+1)}
		if p, ok := controllerID[disk.ControllerKey]; ok {
			fields = append(fields, "Parent", fmt.Sprint(p))
		}
		item(append(fields, "ResourceType", "17")...)
	}
	n := 0
	for _, d := range devices {
		nic, ok := d.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		n++
		subtype := strings.TrimPrefix(strings.ToLower(reflect.TypeOf(d).Elem().Name()), "virtual")
		item("AddressOnParent", fmt.Sprint(6+n),
			"AutomaticAllocation", "true",
			"Connection", nicNetwork(nic),
			"ElementName", fmt.Sprintf("Network adapter %d", n),
			"ResourceSubType", subtype,
			"ResourceType", "10")
	}
	// Drives with images stay on the datastore; their items say what to attach.
	for _, d := range devices {
		dev := d.GetVirtualDevice()
		var rtype, subtype, label string
		switch d.(type) {
		case *types.VirtualCdrom:
			rtype, subtype, label = "15", "vmware.cdrom.remotepassthrough", "CD/DVD drive"
			if _, ok := dev.Backing.(*types.VirtualCdromIsoBackingInfo); ok {
				subtype = "vmware.cdrom.iso"
			}
		case *types.VirtualFloppy:
			rtype, subtype, label = "14", "vmware.floppy.remotedevice", "Floppy drive"
			if _, ok := dev.Backing.(*types.VirtualFloppyImageBackingInfo); ok {
				subtype = "vmware.floppy.image"
			}
		default:
			continue
		}
		if dev.DeviceInfo != nil && dev.DeviceInfo.GetDescription().Label != "" {
			label = dev.DeviceInfo.GetDescription().Label
		}
		unit := int32(0)
		if dev.UnitNumber != nil {
			unit = *dev.UnitNumber
		}
		fields := []string{"AddressOnParent", fmt.Sprint(unit),
			"AutomaticAllocation", "false",
			"ElementName", label}
		if p, ok := controllerID[dev.ControllerKey]; ok {
			fields = append(fields, "Parent", fmt.Sprint(p))
		}
		item(append(fields, "ResourceSubType", subtype, "ResourceType", rtype)...)
	}
	// What vCenter 6.7+ writes for firmware and the NVRAM file.
	if vm.Config.Firmware != "" {
		w(`      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="%s"/>`+"\n", esc(vm.Config.Firmware))
	}
	if bo := vm.Config.BootOptions; bo != nil && bo.EfiSecureBootEnabled != nil {
		w(`      <vmw:Config ovf:required="false" vmw:key="bootOptions.efiSecureBootEnabled" vmw:value="%t"/>`+"\n", *bo.EfiSecureBootEnabled)
	}
	if nvramFileIndex >= 0 {
		w(`      <vmw:ExtraConfig ovf:required="false" vmw:key="nvram" vmw:value="ovf:/file/file%d"/>`+"\n", nvramFileIndex+1)
	}
	w("    </VirtualHardwareSection>\n  </VirtualSystem>\n</Envelope>\n")
	return b.String(), nil
}

// nicNetwork names the network a NIC is connected to. Caller holds the VM
// lock; portgroups are read without theirs (their names do not change here).
func nicNetwork(nic types.BaseVirtualEthernetCard) string {
	switch b := nic.GetVirtualEthernetCard().Backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.DeviceName != "" {
			return b.DeviceName
		}
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
		if pg, ok := simulator.Map.Get(ref).(*simulator.DistributedVirtualPortgroup); ok {
			return pg.Name
		}
		return "DVSwitch: " + b.Port.PortgroupKey
	}
	return "VM Network"
}

// diskLabel is the disk's device label ("Hard disk 2"), as vCenter names its Item.
func diskLabel(disk *types.VirtualDisk, i int) string {
	if disk.DeviceInfo != nil && disk.DeviceInfo.GetDescription().Label != "" {
		return disk.DeviceInfo.GetDescription().Label
	}
	return fmt.Sprintf("Hard disk %d", i+1)
}
