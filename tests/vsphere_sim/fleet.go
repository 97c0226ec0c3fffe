package main

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// fleetGroups are the folders under /<dc>/vm/fleet the extra VMs are spread over.
var fleetGroups = []string{"web", "db", "app", "batch", "k8s", "windows", "lab", "legacy"}

// fleetGuests are the configured guest OS ids the extra VMs cycle through.
var fleetGuests = []string{
	"debian11_64Guest", "ubuntu64Guest", "rhel8_64Guest", "windows2019srv_64Guest",
	"centos7_64Guest", "debian10_64Guest", "windows9Server64Guest", "otherLinux64Guest",
}

// addFleet creates n more VMs in /<dc>/vm/fleet/<group>/<group>-NNNNN, shaped like a real
// estate: varied power state, guest OS, CPUs/cores, memory, one or two thin/thick disks on a
// paravirtual SCSI controller and one NIC on "VM Network". A few have CBT, a snapshot or are
// templates. Everything goes through the simulator's own methods in-process, so the search
// index, parents and the PropertyCollector stay consistent; disk files are created empty
// (a download of one streams a valid never-written VMDK).
func addFleet(model *simulator.Model, n int) error {
	if n <= 0 {
		return nil
	}
	ctx := context.Background()
	c, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		return err
	}
	finder := find.NewFinder(c, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return err
	}
	finder.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}
	pools, err := finder.ResourcePoolList(ctx, "*")
	if err != nil || len(pools) == 0 {
		return fmt.Errorf("no resource pool for the fleet: %v", err)
	}
	pool := pools[0].Reference()
	dsList, err := finder.DatastoreList(ctx, "*")
	if err != nil || len(dsList) == 0 {
		return fmt.Errorf("no datastore for the fleet: %v", err)
	}
	ds := dsList[0].Name()

	fleet, err := folders.VmFolder.CreateFolder(ctx, "fleet")
	if err != nil {
		return err
	}
	groups := make([]*object.Folder, len(fleetGroups))
	for i, g := range fleetGroups {
		if groups[i], err = fleet.CreateFolder(ctx, g); err != nil {
			return err
		}
	}

	for i := 0; i < n; i++ {
		g := i % len(fleetGroups)
		name := fmt.Sprintf("%s-%05d", fleetGroups[g], i)
		spec := fleetSpec(i, name, ds)
		res, err := methods.CreateVM_Task(ctx, c, &types.CreateVM_Task{This: groups[g].Reference(), Config: spec, Pool: pool})
		if err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
		vmRef, err := taskResult(res.Returnval)
		if err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
		if err := shapeFleetVM(ctx, c, i, vmRef); err != nil {
			return fmt.Errorf("shaping %s: %w", name, err)
		}
	}
	return nil
}

// fleetSpec is the config of the i-th extra VM.
func fleetSpec(i int, name, ds string) types.VirtualMachineConfigSpec {
	cpus := []int32{1, 2, 4, 8}[i%4]
	cores := int32(1)
	if cpus >= 4 && i%3 == 0 {
		cores = cpus / 2
	}
	memory := []int64{512, 1024, 2048, 4096, 8192, 16384}[i%6]
	ctrl := &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{
		SharedBus:         types.VirtualSCSISharingNoSharing,
		VirtualController: types.VirtualController{BusNumber: 0, VirtualDevice: types.VirtualDevice{Key: 1000}},
	}}
	changes := []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: ctrl},
	}
	disks := 1 + i%2
	for d := 0; d < disks; d++ {
		gib := int64([]int{8, 16, 20, 40, 100}[(i+d)%5])
		thin := (i+d)%3 != 0
		unit := int32(d)
		changes = append(changes, &types.VirtualDeviceConfigSpec{
			Operation:     types.VirtualDeviceConfigSpecOperationAdd,
			FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate,
			Device: &types.VirtualDisk{
				VirtualDevice: types.VirtualDevice{
					Key: int32(2000 + d), ControllerKey: 1000, UnitNumber: &unit,
					DeviceInfo: &types.Description{Label: fmt.Sprintf("Hard disk %d", d+1), Summary: fmt.Sprintf("%d GB", gib)},
					Backing: &types.VirtualDiskFlatVer2BackingInfo{
						VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
							FileName: fmt.Sprintf("[%s] %s/%s_%d.vmdk", ds, name, name, d),
						},
						DiskMode:        string(types.VirtualDiskModePersistent),
						ThinProvisioned: types.NewBool(thin),
						EagerlyScrub:    types.NewBool(!thin && i%2 == 0),
					},
				},
				CapacityInKB:    gib << 20,
				CapacityInBytes: gib << 30,
			},
		})
	}
	var nic types.BaseVirtualDevice
	card := types.VirtualEthernetCard{VirtualDevice: types.VirtualDevice{
		Key:        4000,
		DeviceInfo: &types.Description{Label: "Network adapter 1", Summary: "VM Network"},
		Backing: &types.VirtualEthernetCardNetworkBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"},
		},
	}, AddressType: string(types.VirtualEthernetCardMacTypeGenerated)}
	if i%4 == 3 {
		nic = &types.VirtualE1000e{VirtualEthernetCard: card}
	} else {
		nic = &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: card}}
	}
	changes = append(changes, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: nic})

	spec := types.VirtualMachineConfigSpec{
		Name:              name,
		GuestId:           fleetGuests[i%len(fleetGuests)],
		NumCPUs:           cpus,
		NumCoresPerSocket: cores,
		MemoryMB:          memory,
		Files:             &types.VirtualMachineFileInfo{VmPathName: "[" + ds + "]"},
		DeviceChange:      changes,
	}
	if i%5 == 0 {
		spec.ChangeTrackingEnabled = types.NewBool(true)
	}
	if i%7 == 0 {
		spec.Firmware = string(types.GuestOsDescriptorFirmwareTypeEfi)
		spec.BootOptions = &types.VirtualMachineBootOptions{EfiSecureBootEnabled: types.NewBool(i%14 == 0)}
	}
	return spec
}

// shapeFleetVM sets the i-th VM's state after creation: about half powered on (with VMware
// Tools running and reporting the guest), some suspended, a snapshot on every 25th, every
// 100th a template; powered-off VMs have tools installed but not running, or none.
func shapeFleetVM(ctx context.Context, c *vim25.Client, i int, ref types.ManagedObjectReference) error {
	vm := findVM(ref)
	if vm == nil {
		return fmt.Errorf("%s vanished", ref.Value)
	}
	fixGuestFullName(vm)
	switch {
	case i%100 == 99:
		_, err := methods.MarkAsTemplate(ctx, c, &types.MarkAsTemplate{This: ref})
		return err
	case i%25 == 24:
		res, err := methods.CreateSnapshot_Task(ctx, c, &types.CreateSnapshot_Task{This: ref, Name: "before-upgrade"})
		if err != nil {
			return err
		}
		if _, err := taskResult(res.Returnval); err != nil {
			return err
		}
	}
	switch {
	case i%2 == 0:
		res, err := methods.PowerOnVM_Task(ctx, c, &types.PowerOnVM_Task{This: ref})
		if err != nil {
			return err
		}
		if _, err := taskResult(res.Returnval); err != nil {
			return err
		}
		syncConnected(vm, true)
		if i%10 != 8 { // a few run without tools
			return setGuest(vm, guestReport{tools: "running", guestID: vm.Config.GuestId,
				hostName: vm.Name, ip: fmt.Sprintf("10.%d.%d.%d", 1+i/65536%250, i/256%256, i%256)})
		}
	case i%20 == 11:
		for _, state := range []func() (types.ManagedObjectReference, error){
			func() (types.ManagedObjectReference, error) {
				r, err := methods.PowerOnVM_Task(ctx, c, &types.PowerOnVM_Task{This: ref})
				if err != nil {
					return types.ManagedObjectReference{}, err
				}
				return r.Returnval, nil
			},
			func() (types.ManagedObjectReference, error) {
				r, err := methods.SuspendVM_Task(ctx, c, &types.SuspendVM_Task{This: ref})
				if err != nil {
					return types.ManagedObjectReference{}, err
				}
				return r.Returnval, nil
			},
		} {
			task, err := state()
			if err != nil {
				return err
			}
			if _, err := taskResult(task); err != nil {
				return err
			}
		}
	}
	if i%3 == 1 {
		return setGuest(vm, guestReport{tools: "not-running"})
	}
	return nil
}

// taskResult is a finished task's result. The simulator runs tasks synchronously, so it is
// read straight from the registry instead of waiting on the PropertyCollector.
func taskResult(ref types.ManagedObjectReference) (types.ManagedObjectReference, error) {
	task, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return types.ManagedObjectReference{}, fmt.Errorf("task %s not found", ref.Value)
	}
	var info types.TaskInfo
	simulator.Map.WithLock(task, func() { info = task.Info })
	if info.Error != nil {
		return types.ManagedObjectReference{}, fmt.Errorf("%s: %T", info.Name, info.Error.Fault)
	}
	if r, ok := info.Result.(types.ManagedObjectReference); ok {
		return r, nil
	}
	return types.ManagedObjectReference{}, nil
}
