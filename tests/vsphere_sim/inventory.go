package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// userGuideVMs is the inventory from HyperSDK's user guide, as
// folder-under-vm-folder / VM name.
var userGuideVMs = [][2]string{
	{"prod", "web01"},
	{"prod", "web02"},
	{"prod", "app01"},
	{"prod", "db01"},
	{"dev", "app01"},
}

// shapeInventory turns the default model (DC0 with DC0_C0_RP0_VM0..4) into
// /dc/vm/prod/{web01,web02,app01,db01} and /dc/vm/dev/app01. It drives the
// simulator through its own SOAP methods (in-process, no network) so every
// side effect (parents, child lists, names in the search index) stays
// consistent. Disk files keep their original unique directories, which also
// avoids a clash between the two "app01" VMs.
func shapeInventory(model *simulator.Model) error {
	ctx := context.Background()
	// simulator.Service implements soap.RoundTripper in-process using an
	// internal, already authenticated session.
	c, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		return err
	}
	finder := find.NewFinder(c, false)
	dc, err := finder.Datacenter(ctx, "DC0")
	if err != nil {
		return err
	}
	finder.SetDatacenter(dc)
	vms, err := finder.VirtualMachineList(ctx, "*")
	if err != nil {
		return err
	}
	if len(vms) < len(userGuideVMs) {
		return fmt.Errorf("model has %d VMs, need %d", len(vms), len(userGuideVMs))
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name() < vms[j].Name() })

	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}
	sub := map[string]*object.Folder{}
	for _, spec := range userGuideVMs {
		if sub[spec[0]] == nil {
			f, err := folders.VmFolder.CreateFolder(ctx, spec[0])
			if err != nil {
				return err
			}
			sub[spec[0]] = f
		}
	}
	for i, spec := range userGuideVMs {
		vm := vms[i]
		task, err := sub[spec[0]].MoveInto(ctx, []types.ManagedObjectReference{vm.Reference()})
		if err != nil {
			return err
		}
		if err := task.Wait(ctx); err != nil {
			return fmt.Errorf("moving %s: %w", vm.Name(), err)
		}
		if err := rename(ctx, vm.Common, spec[1]); err != nil {
			return err
		}
	}
	// Renaming the datacenter last keeps the finder paths above valid.
	return rename(ctx, dc.Common, "dc")
}

func rename(ctx context.Context, obj object.Common, name string) error {
	task, err := obj.Rename(ctx, name)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}
