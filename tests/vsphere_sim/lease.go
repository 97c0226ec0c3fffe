package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// nfcLease is an export HttpNfcLease. It lives in the simulator's global
// registry so that the simulator's PropertyCollector serves its properties
// and its dispatcher calls the HttpNfcLease* methods below, holding the
// registry lock for the object. Any other mutation takes that same lock
// (simulator.Map.WithLock) and goes through simulator.Map.Update so that
// WaitForUpdates(Ex) clients see the change.
type nfcLease struct {
	mo.HttpNfcLease // must stay the first field: the PropertyCollector digs it out

	ext      *extension
	seq      int64
	vm       types.ManagedObjectReference
	vmName   string
	disks    []leaseDisk
	timeout  time.Duration
	deadline time.Time

	// live is 1 while downloads are allowed (state ready); read without
	// the lock by in-flight transfers so they stop when the lease ends.
	live        int32
	bytesServed int64
	requests    int64

	completed, aborted, timedOut bool
	injected                     string // "error" or "never-ready": see extension.takeLeaseFault; "inaccessible": a disk's datastore is
	injectedFile                 string // the disk file an "inaccessible" lease could not open
	progressCalls                int
	progressHistory              []int32
	manifestRequests             int
}

type leaseDisk struct {
	name     string // URL file name, e.g. "disk-0.vmdk"
	file     string // local file backing the disk
	key      string // deviceUrl key, e.g. "/vm-42/VirtualLsiLogicController0:0"
	capacity int64  // bytes
	// nvram marks the VM's .nvram: vSphere 6.7+ offers it as a device URL with disk=false.
	nvram bool
}

// nvramKey is the deviceUrl key of a VM's NVRAM file.
func nvramKey(vm types.ManagedObjectReference) string { return "/" + vm.Value + "/nvram" }

// nvramFile is the VM's .nvram beside its .vmx (vcsim names both after the VM's first
// name), or "" when it is missing or empty: a VM that never booted has no NVRAM to export.
func nvramFile(vm *simulator.VirtualMachine) string {
	vmx := vm.Config.Files.VmPathName
	if !strings.HasSuffix(vmx, ".vmx") {
		return ""
	}
	file, err := datastorePath(strings.TrimSuffix(vmx, ".vmx") + ".nvram")
	if err != nil {
		return ""
	}
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		return ""
	}
	return file
}

// exportVM implements VirtualMachine.ExportVm.
func (x *extension) exportVM(ref types.ManagedObjectReference) (types.ManagedObjectReference, types.BaseMethodFault) {
	vm := findVM(ref)
	if vm == nil {
		return types.ManagedObjectReference{}, &types.ManagedObjectNotFound{Obj: ref}
	}
	injected := x.takeLeaseFault()
	if injected == "refuse" {
		return types.ManagedObjectReference{}, &types.TaskInProgress{Task: types.ManagedObjectReference{Type: "Task", Value: "task-busy"}}
	}
	l := &nfcLease{ext: x, vm: ref, timeout: x.leaseTimeout, injected: injected}
	var fault types.BaseMethodFault
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			fault = &types.InvalidPowerState{
				RequestedState: types.VirtualMachinePowerStatePoweredOff,
				ExistingState:  vm.Runtime.PowerState,
			}
			return
		}
		l.vmName = vm.Name
		devices := vm.Config.Hardware.Device
		n := 0
		for _, dev := range devices {
			disk, ok := dev.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok || leftOutByExport(disk) {
				continue
			}
			if ds := b.GetVirtualDeviceFileBackingInfo().Datastore; ds != nil && l.injected == "" && !datastoreAccessible(*ds) {
				// vCenter hands out the lease, which then fails when the host cannot open the disk.
				l.injected = "inaccessible"
				l.injectedFile = b.GetVirtualDeviceFileBackingInfo().FileName
			}
			file, err := datastorePath(b.GetVirtualDeviceFileBackingInfo().FileName)
			if err != nil {
				fault = &types.FileNotFound{FileFault: types.FileFault{File: b.GetVirtualDeviceFileBackingInfo().FileName}}
				return
			}
			capacity := disk.CapacityInBytes
			if capacity == 0 {
				capacity = disk.CapacityInKB * 1024
			}
			l.disks = append(l.disks, leaseDisk{
				name:     fmt.Sprintf("disk-%d.vmdk", n),
				file:     file,
				key:      deviceKey(ref, devices, disk),
				capacity: capacity,
			})
			n++
		}
		if file := nvramFile(vm); file != "" {
			l.disks = append(l.disks, leaseDisk{name: "nvram-0.nvram", file: file, key: nvramKey(ref), nvram: true})
		}
	})
	if fault != nil {
		return types.ManagedObjectReference{}, fault
	}

	x.mu.Lock()
	x.counter++
	l.seq = x.counter
	x.mu.Unlock()
	l.Self = types.ManagedObjectReference{Type: "HttpNfcLease", Value: fmt.Sprintf("lease-%d", l.seq)}
	l.State = types.HttpNfcLeaseStateInitializing
	l.InitializeProgress = 0
	l.deadline = l.ext.now().Add(l.timeout)
	simulator.Map.Put(l)
	x.mu.Lock()
	x.leases[l.Self.Value] = l
	x.mu.Unlock()

	go l.run()
	return l.Self, nil
}

// datastoreAccessible is the datastore's summary.accessible (true when it is unknown).
func datastoreAccessible(ref types.ManagedObjectReference) bool {
	ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
	if !ok {
		return true
	}
	accessible := true
	simulator.Map.WithLock(ds, func() { accessible = ds.Summary.Accessible })
	return accessible
}

// leftOutByExport: vSphere's ExportVm serves neither raw device mappings nor independent
// disks (snapshots cannot cover them); the lease has no device URL for them.
func leftOutByExport(disk *types.VirtualDisk) bool {
	switch b := disk.Backing.(type) {
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		return true
	case *types.VirtualDiskFlatVer2BackingInfo:
		return strings.HasPrefix(b.DiskMode, "independent")
	case *types.VirtualDiskSparseVer2BackingInfo:
		return strings.HasPrefix(b.DiskMode, "independent")
	case *types.VirtualDiskSeSparseBackingInfo:
		return strings.HasPrefix(b.DiskMode, "independent")
	}
	return false
}

// deviceKey renders a disk the way vCenter keys it in HttpNfcLeaseDeviceUrl,
// e.g. "/vm-42/VirtualLsiLogicController0:0" (controller type, bus, unit).
func deviceKey(vm types.ManagedObjectReference, devices []types.BaseVirtualDevice, disk *types.VirtualDisk) string {
	controller, bus := "VirtualController", int32(0)
	for _, d := range devices {
		if d.GetVirtualDevice().Key == disk.ControllerKey {
			controller = reflect.TypeOf(d).Elem().Name()
			if c, ok := d.(types.BaseVirtualController); ok {
				bus = c.GetVirtualController().BusNumber
			}
		}
	}
	unit := int32(0)
	if disk.UnitNumber != nil {
		unit = *disk.UnitNumber
	}
	return fmt.Sprintf("/%s/%s%d:%d", vm.Value, controller, bus, unit)
}

// run drives the lease: initializing -> ready after readyDelay, then watches
// for the inactivity timeout until the lease reaches a final state.
func (l *nfcLease) run() {
	time.Sleep(l.ext.readyDelay)
	ended := false
	simulator.Map.WithLock(l, func() {
		if l.State != types.HttpNfcLeaseStateInitializing {
			ended = true // aborted while initializing
			return
		}
		switch l.injected {
		case "never-ready": // initializing until the client gives up and aborts
			ended = true
			return
		case "inaccessible":
			ended = true
			l.fail(&types.FileNotFound{FileFault: types.FileFault{File: l.injectedFile}},
				fmt.Sprintf("Unable to access file %s", l.injectedFile))
			return
		case "error":
			ended = true
			l.fail(&types.SystemError{Reason: "injected fault"}, "A general system error occurred: the host could not open the disks")
			return
		}
		info := &types.HttpNfcLeaseInfo{
			Lease:        l.Self,
			Entity:       l.vm,
			LeaseTimeout: int32(l.timeout / time.Second),
		}
		if info.LeaseTimeout == 0 {
			info.LeaseTimeout = 1
		}
		for _, d := range l.disks {
			info.TotalDiskCapacityInKB += d.capacity / 1024
			info.DeviceUrl = append(info.DeviceUrl, types.HttpNfcLeaseDeviceUrl{
				Key:           d.key,
				ImportKey:     d.key,
				Url:           fmt.Sprintf("https://*/nfc/%s/%s", l.Self.Value, d.name),
				SslThumbprint: l.ext.thumbprint,
				Disk:          types.NewBool(!d.nvram),
				TargetId:      d.name,
			})
		}
		l.deadline = l.ext.now().Add(l.timeout)
		atomic.StoreInt32(&l.live, 1)
		simulator.Map.Update(l, []types.PropertyChange{
			{Name: "info", Val: info},
			{Name: "initializeProgress", Val: int32(100)},
			{Name: "state", Val: types.HttpNfcLeaseStateReady},
		})
	})
	if ended {
		return
	}

	tick := l.timeout / 20
	if tick > time.Second {
		tick = time.Second
	}
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	for range time.Tick(tick) {
		if l.expireIfDue() {
			return
		}
	}
}

// expireIfDue fails a ready lease past its deadline; true once the lease is no longer ready.
func (l *nfcLease) expireIfDue() bool {
	done := false
	simulator.Map.WithLock(l, func() {
		if l.State != types.HttpNfcLeaseStateReady {
			done = true
			return
		}
		if l.ext.now().After(l.deadline) {
			l.timedOut = true
			log.Printf("%s: timed out after %s without progress", l.Self.Value, l.timeout)
			l.fail(&types.Timedout{}, "The operation timed out: no lease progress was reported")
			done = true
		}
	})
	return done
}

// fail moves the lease to the error state. Caller holds the lease lock.
func (l *nfcLease) fail(fault types.BaseMethodFault, msg string) {
	atomic.StoreInt32(&l.live, 0)
	simulator.Map.Update(l, []types.PropertyChange{
		{Name: "error", Val: &types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg}},
		{Name: "state", Val: types.HttpNfcLeaseStateError},
	})
}

func invalidState() *soap.Fault { return newFault(&types.InvalidState{}) }

// HttpNfcLeaseProgress records progress and keeps the lease alive.
func (l *nfcLease) HttpNfcLeaseProgress(req *types.HttpNfcLeaseProgress) soap.HasFault {
	body := new(methods.HttpNfcLeaseProgressBody)
	switch {
	case req.Percent < 0 || req.Percent > 100:
		body.Fault_ = newFault(&types.InvalidArgument{InvalidProperty: "percent"})
	case l.State != types.HttpNfcLeaseStateReady:
		body.Fault_ = invalidState()
	default:
		l.progressCalls++
		l.progressHistory = append(l.progressHistory, req.Percent)
		l.deadline = l.ext.now().Add(l.timeout)
		simulator.Map.Update(l, []types.PropertyChange{{Name: "transferProgress", Val: req.Percent}})
		body.Res = new(types.HttpNfcLeaseProgressResponse)
	}
	return body
}

// HttpNfcLeaseComplete ends a successful transfer.
func (l *nfcLease) HttpNfcLeaseComplete(req *types.HttpNfcLeaseComplete) soap.HasFault {
	body := new(methods.HttpNfcLeaseCompleteBody)
	if l.State != types.HttpNfcLeaseStateReady {
		body.Fault_ = invalidState()
		return body
	}
	l.completed = true
	atomic.StoreInt32(&l.live, 0)
	simulator.Map.Update(l, []types.PropertyChange{
		{Name: "transferProgress", Val: int32(100)},
		{Name: "state", Val: types.HttpNfcLeaseStateDone},
	})
	body.Res = new(types.HttpNfcLeaseCompleteResponse)
	return body
}

// HttpNfcLeaseAbort ends the lease in the error state; the client's fault,
// if given, becomes lease.error, otherwise RequestCanceled.
func (l *nfcLease) HttpNfcLeaseAbort(req *types.HttpNfcLeaseAbort) soap.HasFault {
	body := new(methods.HttpNfcLeaseAbortBody)
	if l.State != types.HttpNfcLeaseStateReady && l.State != types.HttpNfcLeaseStateInitializing {
		body.Fault_ = invalidState()
		return body
	}
	l.aborted = true
	var fault types.BaseMethodFault = &types.RequestCanceled{}
	msg := "The task was canceled by a user."
	if req.Fault != nil && req.Fault.Fault != nil {
		fault, msg = req.Fault.Fault, req.Fault.LocalizedMessage
	}
	l.fail(fault, msg)
	body.Res = new(types.HttpNfcLeaseAbortResponse)
	return body
}

// HttpNfcLeaseGetManifest returns SHA-1 and sizes of the disk files.
func (l *nfcLease) HttpNfcLeaseGetManifest(req *types.HttpNfcLeaseGetManifest) soap.HasFault {
	body := new(methods.HttpNfcLeaseGetManifestBody)
	if l.State != types.HttpNfcLeaseStateReady {
		body.Fault_ = invalidState()
		return body
	}
	l.manifestRequests++
	res := new(types.HttpNfcLeaseGetManifestResponse)
	for _, d := range l.disks {
		sum, size, err := sha1File(d.file)
		if err != nil {
			body.Fault_ = newFault(&types.FileNotFound{FileFault: types.FileFault{File: d.name}})
			return body
		}
		res.Returnval = append(res.Returnval, types.HttpNfcLeaseManifestEntry{
			Key:           d.key,
			Sha1:          sum,
			Size:          size,
			Disk:          !d.nvram,
			Capacity:      d.capacity,
			PopulatedSize: size,
		})
	}
	body.Res = res
	return body
}

func sha1File(name string) (string, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha1.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func (l *nfcLease) report() leaseReport {
	var r leaseReport
	simulator.Map.WithLock(l, func() {
		r = leaseReport{
			ID:               l.Self.Value,
			VM:               l.vm.Value,
			VMName:           l.vmName,
			State:            string(l.State),
			Progress:         l.TransferProgress,
			ProgressCalls:    l.progressCalls,
			ProgressHistory:  append([]int32{}, l.progressHistory...),
			Completed:        l.completed,
			Aborted:          l.aborted,
			TimedOut:         l.timedOut,
			ManifestRequests: l.manifestRequests,
			BytesServed:      atomic.LoadInt64(&l.bytesServed),
			Requests:         atomic.LoadInt64(&l.requests),
		}
		if l.Error != nil && l.Error.Fault != nil {
			r.Error = reflect.TypeOf(l.Error.Fault).Elem().Name()
		}
		for _, d := range l.disks {
			r.Files = append(r.Files, d.name)
		}
	})
	return r
}

// ---- NFC downloads ----

// serveNFC serves GET/HEAD /nfc/<lease>/<disk-N.vmdk> from the disk's
// backing file, with Range support (http.ServeContent). Like NFC on ESXi it
// needs no session: the lease id in the URL is the credential. Leases that
// are not ready (initializing, done, error/timed out) answer 404.
func (x *extension) serveNFC(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/nfc/"), "/")
	if len(parts) != 2 {
		http.NotFound(w, r)
		return
	}
	x.mu.Lock()
	l := x.leases[parts[0]]
	x.mu.Unlock()
	if l == nil || atomic.LoadInt32(&l.live) == 0 {
		http.NotFound(w, r)
		return
	}
	var disk *leaseDisk
	for i := range l.disks {
		if l.disks[i].name == parts[1] {
			disk = &l.disks[i]
		}
	}
	if disk == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	file := disk.file
	if st, err := os.Stat(file); err == nil && st.Size() == 0 && !disk.nvram {
		// A disk never written to: vCenter still streams a valid VMDK of the disk's capacity.
		if file, err = neverWrittenDisk(disk.capacity); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	f, err := os.Open(file)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	atomic.AddInt64(&l.requests, 1)
	w.Header().Set("Content-Type", "application/octet-stream")
	src := &leaseReader{f: f, lease: l, rate: x.nfcRate, dropAfter: -1}
	if r.Method == http.MethodGet {
		x.mu.Lock()
		if x.dropCount > 0 {
			x.dropCount--
			src.dropAfter = x.dropAfter
		}
		x.mu.Unlock()
	}
	http.ServeContent(w, r, disk.name, st.ModTime(), src)
	log.Printf("nfc %s %s %s: %d bytes", r.Method, l.Self.Value, disk.name, src.n)
}

// neverWrittenDisk is a streamOptimized VMDK of capacity bytes holding no data, made once
// with qemu-img (the tests' own tool for VMDKs) and kept in the temporary directory.
func neverWrittenDisk(capacity int64) (string, error) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("vsphere-sim-never-written-%d.vmdk", capacity))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	f, err := os.CreateTemp(os.TempDir(), "vsphere-sim-*.tmp")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()
	out, err := exec.Command("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized",
		tmp, strconv.FormatInt(capacity, 10)).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("qemu-img create: %v: %s", err, out)
	}
	return path, os.Rename(tmp, path)
}

// leaseReader feeds http.ServeContent. It counts bytes served, optionally
// throttles to rate bytes/second, and fails once the lease is no longer
// ready, which cuts in-flight transfers of aborted/timed out leases.
type leaseReader struct {
	f     *os.File
	lease *nfcLease
	rate  int64
	n     int64
	start time.Time
	// dropAfter >= 0 cuts the transfer after that many bytes (fault injection).
	dropAfter int64
}

func (r *leaseReader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }

func (r *leaseReader) Read(p []byte) (int, error) {
	if atomic.LoadInt32(&r.lease.live) == 0 {
		return 0, fmt.Errorf("lease %s is no longer ready", r.lease.Self.Value)
	}
	if r.dropAfter >= 0 {
		if r.n >= r.dropAfter {
			return 0, fmt.Errorf("download dropped after %d bytes (injected fault)", r.n)
		}
		if left := r.dropAfter - r.n; int64(len(p)) > left {
			p = p[:left]
		}
	}
	if r.rate > 0 {
		if r.start.IsZero() {
			r.start = time.Now()
		}
		// Small reads keep the pacing smooth: at most 1/20 s worth.
		if max := int(r.rate / 20); max > 0 && len(p) > max {
			p = p[:max]
		}
	}
	n, err := r.f.Read(p)
	r.n += int64(n)
	atomic.AddInt64(&r.lease.bytesServed, int64(n))
	if r.rate > 0 && n > 0 {
		due := r.start.Add(time.Duration(float64(r.n) / float64(r.rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	return n, err
}
