package main

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// guestFullNames is what vCenter 7 shows as config.guestFullName for a guest id. vcsim
// 0.24.2 copies the id itself there; a real vCenter never does.
var guestFullNames = map[string]string{
	"debian11_64Guest":       "Debian GNU/Linux 11 (64-bit)",
	"debian10_64Guest":       "Debian GNU/Linux 10 (64-bit)",
	"debian9_64Guest":        "Debian GNU/Linux 9 (64-bit)",
	"ubuntu64Guest":          "Ubuntu Linux (64-bit)",
	"rhel8_64Guest":          "Red Hat Enterprise Linux 8 (64-bit)",
	"rhel7_64Guest":          "Red Hat Enterprise Linux 7 (64-bit)",
	"centos7_64Guest":        "CentOS 7 (64-bit)",
	"centos8_64Guest":        "CentOS 8 (64-bit)",
	"sles15_64Guest":         "SUSE Linux Enterprise 15 (64-bit)",
	"windows2019srv_64Guest": "Microsoft Windows Server 2019 (64-bit)",
	"windows9Server64Guest":  "Microsoft Windows Server 2016 or later (64-bit)",
	"windows9_64Guest":       "Microsoft Windows 10 (64-bit)",
	"otherLinux64Guest":      "Other Linux (64-bit)",
	"other3xLinux64Guest":    "Other 3.x or later Linux (64-bit)",
	"otherGuest64":           "Other (64-bit)",
	"otherGuest":             "Other (32-bit)",
}

// newerGuestIDs are vSphere 7 guest ids vcsim 0.24.2's validation list lacks.
var newerGuestIDs = []types.VirtualMachineGuestOsIdentifier{
	"debian11Guest", "debian11_64Guest", "windows2019srv_64Guest", "windows2019srvNext_64Guest",
	"rhel8_64Guest", "centos8_64Guest", "sles15_64Guest", "freebsd12_64Guest", "amazonlinux2_64Guest",
}

func init() {
	known := map[types.VirtualMachineGuestOsIdentifier]bool{}
	for _, id := range simulator.GuestID {
		known[id] = true
	}
	for _, id := range newerGuestIDs {
		if !known[id] {
			simulator.GuestID = append(simulator.GuestID, id)
		}
	}
}

// fixGuestFullName sets config.guestFullName (and the summary's copy) from the guest id, as
// vCenter does, when vcsim left the id itself there.
func fixGuestFullName(vm *simulator.VirtualMachine) {
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil || vm.Config.GuestFullName != vm.Config.GuestId {
			return
		}
		full, ok := guestFullNames[vm.Config.GuestId]
		if !ok {
			return
		}
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "config.guestFullName", Val: full},
			{Name: "summary.config.guestFullName", Val: full},
		})
	})
}

// fixAllGuestFullNames applies fixGuestFullName to every VM (after a create or reconfigure
// went through the simulator).
func fixAllGuestFullNames() {
	for _, e := range simulator.Map.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok {
			fixGuestFullName(vm)
		}
	}
}

// guestReport is what VMware Tools in a guest report, as a test sets it.
type guestReport struct {
	tools    string // "running", "not-running" or "not-installed"
	guestID  string // detected guest id (only when running); "" = the configured one
	fullName string // detected full name; "" = derived from the guest id
	hostName string
	ip       string
}

// setGuest writes the guest.* and summary.guest.* properties as vCenter 7 reports them for
// that tools state. Tools can only run in a powered-on VM.
func setGuest(vm *simulator.VirtualMachine, g guestReport) error {
	var err error
	simulator.Map.WithLock(vm, func() {
		running := g.tools == "running"
		if running && vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			err = fmt.Errorf("%s is %s: VMware Tools run only in a powered-on VM", vm.Name, vm.Runtime.PowerState)
			return
		}
		var toolsStatus types.VirtualMachineToolsStatus
		runStatus := types.VirtualMachineToolsRunningStatusGuestToolsNotRunning
		version, versionStatus := "11333", "guestToolsCurrent"
		guestState := "notRunning"
		switch g.tools {
		case "running":
			toolsStatus = types.VirtualMachineToolsStatusToolsOk
			runStatus = types.VirtualMachineToolsRunningStatusGuestToolsRunning
			guestState = "running"
		case "not-running":
			toolsStatus = types.VirtualMachineToolsStatusToolsNotRunning
		case "not-installed":
			toolsStatus = types.VirtualMachineToolsStatusToolsNotInstalled
			version, versionStatus = "0", "guestToolsNotInstalled"
		default:
			err = fmt.Errorf("tools must be running, not-running or not-installed, not %q", g.tools)
			return
		}
		var id, full, host, ip string
		if running {
			id = g.guestID
			if id == "" {
				id = vm.Config.GuestId
			}
			full = g.fullName
			if full == "" {
				full = guestFullNames[id]
			}
			if full == "" {
				full = id
			}
			host, ip = g.hostName, g.ip
		}
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "guest.toolsStatus", Val: toolsStatus},
			{Name: "guest.toolsRunningStatus", Val: string(runStatus)},
			{Name: "guest.toolsVersion", Val: version},
			{Name: "guest.toolsVersionStatus2", Val: versionStatus},
			{Name: "guest.guestState", Val: guestState},
			{Name: "guest.guestId", Val: id},
			{Name: "guest.guestFullName", Val: full},
			{Name: "guest.hostName", Val: host},
			{Name: "guest.ipAddress", Val: ip},
		})
		// Map.Update only knows top-level and guest.* paths through reflection on the
		// object; the summary's copy is set directly.
		if vm.Summary.Guest == nil {
			vm.Summary.Guest = &types.VirtualMachineGuestSummary{}
		}
		vm.Summary.Guest.GuestId = id
		vm.Summary.Guest.GuestFullName = full
		vm.Summary.Guest.ToolsStatus = toolsStatus
		vm.Summary.Guest.ToolsRunningStatus = string(runStatus)
		vm.Summary.Guest.ToolsVersionStatus2 = versionStatus
		vm.Summary.Guest.HostName = host
		vm.Summary.Guest.IpAddress = ip
	})
	return err
}

// syncConnected sets the VM's removable devices (NICs, CD-ROMs, floppies, ...) connected as
// vCenter reports them: never while the VM is powered off; on power-on (poweringOn true)
// those that start connected connect. vcsim leaves connectable.connected as the client
// sent it, so a powered-off VM would show a connected ISO no vCenter reports.
func syncConnected(vm *simulator.VirtualMachine, poweringOn bool) {
	simulator.Map.WithLock(vm, func() {
		off := vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff
		if !off && !poweringOn {
			return
		}
		changed := false
		devices := vm.Config.Hardware.Device
		for _, d := range devices {
			c := d.GetVirtualDevice().Connectable
			if c == nil {
				continue
			}
			want, status := false, string(types.VirtualDeviceConnectInfoStatusUntried)
			if !off && c.StartConnected {
				want, status = true, string(types.VirtualDeviceConnectInfoStatusOk)
			}
			if c.Connected != want || c.Status != status {
				c.Connected, c.Status, changed = want, status, true
			}
		}
		if changed {
			simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
		}
	})
}

// syncAllConnected applies syncConnected to every powered-off VM.
func syncAllConnected() {
	for _, e := range simulator.Map.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok {
			syncConnected(vm, false)
		}
	}
}
