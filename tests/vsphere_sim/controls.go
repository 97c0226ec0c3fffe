package main

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// ---- privileges ----
//
// vcsim 0.24.2 grants every privilege to everybody. The extension answers the
// AuthorizationManager's privilege checks itself: the Admin role's privileges minus what a
// test denied (POST /hypersdk-sim/privileges?deny=VApp.Export[&entity=vm-42]), for the
// logged-in user (the simulator has one). ExportVm honours a VApp.Export denial with
// NoPermission, as vCenter does.

// allEntities marks a denial that holds on every entity.
const allEntities = "*"

// denied reports whether privilege priv is withheld on entity.
func (x *extension) denied(priv string, entity types.ManagedObjectReference) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	on := x.denials[priv]
	return on[allEntities] || on[entity.Value]
}

// adminPrivileges is the Admin role's privilege list (every privilege the server knows).
func adminPrivileges() []string {
	am, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "AuthorizationManager", Value: "AuthorizationManager"}).(*simulator.AuthorizationManager)
	if !ok {
		return nil
	}
	if role := object.AuthorizationRoleList(am.RoleList).ByName("Admin"); role != nil {
		return role.Privilege
	}
	return nil
}

// availability answers one entity's privilege checks.
func (x *extension) availability(entity types.ManagedObjectReference, privs []string) types.EntityPrivilege {
	known := map[string]bool{}
	for _, p := range adminPrivileges() {
		known[p] = true
	}
	out := types.EntityPrivilege{Entity: entity}
	for _, p := range privs {
		out.PrivAvailability = append(out.PrivAvailability, types.PrivilegeAvailability{
			PrivId: p, IsGranted: known[p] && !x.denied(p, entity),
		})
	}
	return out
}

// grantedOn is every privilege the user holds on entity.
func (x *extension) grantedOn(entity types.ManagedObjectReference) []string {
	var out []string
	for _, p := range adminPrivileges() {
		if !x.denied(p, entity) {
			out = append(out, p)
		}
	}
	return out
}

func (x *extension) serveHasPrivilegeOnEntities(w http.ResponseWriter, req *types.HasPrivilegeOnEntities) {
	res := &types.HasPrivilegeOnEntitiesResponse{}
	for _, e := range req.Entity {
		res.Returnval = append(res.Returnval, x.availability(e, req.PrivId))
	}
	writeResult(w, "HasPrivilegeOnEntitiesResponse", res)
}

// hasPrivilegeOnEntityResponse is types.HasPrivilegeOnEntityResponse without the omitempty
// that drops every false from the answer.
type hasPrivilegeOnEntityResponse struct {
	Returnval []bool `xml:"returnval"`
}

func (x *extension) serveHasPrivilegeOnEntity(w http.ResponseWriter, req *types.HasPrivilegeOnEntity) {
	res := &hasPrivilegeOnEntityResponse{}
	for _, a := range x.availability(req.Entity, req.PrivId).PrivAvailability {
		res.Returnval = append(res.Returnval, a.IsGranted)
	}
	writeResult(w, "HasPrivilegeOnEntityResponse", res)
}

func (x *extension) serveHasUserPrivilegeOnEntities(w http.ResponseWriter, req *types.HasUserPrivilegeOnEntities) {
	res := &types.HasUserPrivilegeOnEntitiesResponse{}
	for _, e := range req.Entities {
		res.Returnval = append(res.Returnval, x.availability(e, req.PrivId))
	}
	writeResult(w, "HasUserPrivilegeOnEntitiesResponse", res)
}

func (x *extension) serveFetchUserPrivilegeOnEntities(w http.ResponseWriter, req *types.FetchUserPrivilegeOnEntities) {
	res := &types.FetchUserPrivilegeOnEntitiesResponse{}
	for _, e := range req.Entities {
		res.Returnval = append(res.Returnval, types.UserPrivilegeResult{Entity: e, Privileges: x.grantedOn(e)})
	}
	writeResult(w, "FetchUserPrivilegeOnEntitiesResponse", res)
}

// adminPrivilegesEndpoint: POST /hypersdk-sim/privileges?deny=ID[&entity=MOREF] withholds a
// privilege (on one entity, or everywhere); ?allow=ID[&entity=MOREF] gives it back; ?reset=1
// drops every denial. GET lists the denials.
func (x *extension) adminPrivilegesEndpoint(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		q := r.URL.Query()
		entity := q.Get("entity")
		if entity == "" {
			entity = allEntities
		}
		deny, allow := q.Get("deny"), q.Get("allow")
		x.mu.Lock()
		switch {
		case q.Get("reset") == "1":
			x.denials = map[string]map[string]bool{}
		case deny != "":
			if x.denials[deny] == nil {
				x.denials[deny] = map[string]bool{}
			}
			x.denials[deny][entity] = true
		case allow != "":
			delete(x.denials[allow], entity)
		default:
			x.mu.Unlock()
			http.Error(w, "give deny=PRIVILEGE, allow=PRIVILEGE or reset=1", http.StatusBadRequest)
			return
		}
		x.mu.Unlock()
	} else if r.Method != http.MethodGet {
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		return
	}
	x.mu.Lock()
	out := map[string][]string{}
	for p, on := range x.denials {
		for e := range on {
			out[p] = append(out[p], e)
		}
		sort.Strings(out[p])
	}
	x.mu.Unlock()
	writeJSON(w, map[string]interface{}{"denied": out})
}

// ---- datastores ----

// adminDatastore: POST /hypersdk-sim/datastore?name=NAME&accessible=true|false makes a
// datastore (in)accessible as when its NFS server drops: summary.accessible, overallStatus
// and every host mount's mountInfo.accessible change.
func (x *extension) adminDatastore(w http.ResponseWriter, r *http.Request) {
	if !postOnly(w, r) {
		return
	}
	name, acc := r.URL.Query().Get("name"), r.URL.Query().Get("accessible")
	if acc != "true" && acc != "false" {
		http.Error(w, "accessible must be true or false", http.StatusBadRequest)
		return
	}
	accessible := acc == "true"
	var ds *simulator.Datastore
	for _, e := range simulator.Map.All("Datastore") {
		if d, ok := e.(*simulator.Datastore); ok && d.Name == name {
			ds = d
		}
	}
	if ds == nil {
		http.Error(w, fmt.Sprintf("no datastore named %q", name), http.StatusNotFound)
		return
	}
	simulator.Map.WithLock(ds, func() {
		status, reason := types.ManagedEntityStatusGreen, ""
		if !accessible {
			status, reason = types.ManagedEntityStatusRed, "AllPathsDown_Start"
		}
		mounts := append([]types.DatastoreHostMount(nil), ds.Host...)
		for i := range mounts {
			mounts[i].MountInfo.Accessible = types.NewBool(accessible)
			mounts[i].MountInfo.InaccessibleReason = reason
		}
		simulator.Map.Update(ds, []types.PropertyChange{
			{Name: "summary.accessible", Val: accessible},
			{Name: "overallStatus", Val: status},
			{Name: "host", Val: mounts},
		})
	})
	writeJSON(w, map[string]interface{}{"name": name, "accessible": accessible, "moref": ds.Self.Value})
}

// ---- VM state vcsim's methods cannot set ----

// vmFromQuery finds the VM named by ?vm=MOREF, answering 4xx itself when it cannot.
func vmFromQuery(w http.ResponseWriter, r *http.Request) *simulator.VirtualMachine {
	id := r.URL.Query().Get("vm")
	vm := findVM(types.ManagedObjectReference{Type: "VirtualMachine", Value: id})
	if vm == nil {
		http.Error(w, fmt.Sprintf("no VM with id %q", id), http.StatusNotFound)
	}
	return vm
}

// adminGuest: POST /hypersdk-sim/guest?vm=MOREF&tools=running|not-running|not-installed
// [&guest_id=ID][&full_name=NAME][&host_name=H][&ip=A] sets what VMware Tools report
// (guest.*, summary.guest.*). Tools run only in a powered-on VM (409 otherwise).
func (x *extension) adminGuest(w http.ResponseWriter, r *http.Request) {
	if !postOnly(w, r) {
		return
	}
	vm := vmFromQuery(w, r)
	if vm == nil {
		return
	}
	q := r.URL.Query()
	tools := q.Get("tools")
	if tools != "running" && tools != "not-running" && tools != "not-installed" {
		http.Error(w, "tools must be running, not-running or not-installed", http.StatusBadRequest)
		return
	}
	err := setGuest(vm, guestReport{tools: tools, guestID: q.Get("guest_id"), fullName: q.Get("full_name"),
		hostName: q.Get("host_name"), ip: q.Get("ip")})
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	writeJSON(w, map[string]interface{}{"vm": vm.Self.Value, "tools": tools})
}

// adminEncrypt: POST /hypersdk-sim/encrypt?vm=MOREF[&key_id=ID][&provider=NAME] makes the
// VM encrypted as vCenter reports it: config.keyId and each disk backing's keyId set
// (vcsim 0.24.2 ignores ConfigSpec.crypto).
func (x *extension) adminEncrypt(w http.ResponseWriter, r *http.Request) {
	if !postOnly(w, r) {
		return
	}
	vm := vmFromQuery(w, r)
	if vm == nil {
		return
	}
	keyID, provider := r.URL.Query().Get("key_id"), r.URL.Query().Get("provider")
	if keyID == "" {
		keyID = uuid.New().String()
	}
	if provider == "" {
		provider = "hypersdk-kms"
	}
	key := &types.CryptoKeyId{KeyId: keyID, ProviderId: &types.KeyProviderId{Id: provider}}
	simulator.Map.WithLock(vm, func() {
		devices := vm.Config.Hardware.Device
		for _, d := range devices {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				b.KeyId = key
			}
		}
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "config.keyId", Val: key},
			{Name: "config.hardware.device", Val: devices},
		})
	})
	writeJSON(w, map[string]interface{}{"vm": vm.Self.Value, "key_id": keyID, "provider": provider})
}

// ---- names ----
//
// vCenter stores a managed entity's name with '/', '\' and a '%' that starts no escape
// escaped (%2f, %5c, %25), so a name never breaks an inventory path; ManagedEntity.name
// answers the escaped form. vcsim stores names verbatim (and a '/' would even make it create
// nested directories), so the extension escapes the name in the request before the
// simulator sees it.

var percentEscape = regexp.MustCompile(`^%[0-9A-Fa-f]{2}`)

// escapeEntityName is vCenter's escaping of a managed entity name.
func escapeEntityName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '/':
			b.WriteString("%2f")
		case '\\':
			b.WriteString("%5c")
		case '%':
			if percentEscape.MatchString(name[i:]) {
				b.WriteByte(c)
			} else {
				b.WriteString("%25")
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapeNameInBody rewrites the request's name argument (CreateVM_Task's config.name,
// CreateFolder's name, Rename_Task's newName, CloneVM_Task's name) in its escaped form.
func escapeNameInBody(body []byte, req interface{}) []byte {
	var name, tag string
	switch b := req.(type) {
	case *types.CreateVM_Task:
		name, tag = b.Config.Name, "name"
	case *types.CreateFolder:
		name, tag = b.Name, "name"
	case *types.Rename_Task:
		name, tag = b.NewName, "newName"
	case *types.CloneVM_Task:
		name, tag = b.Name, "name"
	default:
		return body
	}
	escaped := escapeEntityName(name)
	if escaped == name {
		return body
	}
	for _, text := range xmlTexts(name) {
		// The element may carry a namespace prefix or attributes: match its closing tag.
		old := []byte(">" + text + "</")
		i := bytes.Index(body, old)
		if i < 0 {
			continue
		}
		rest := body[i+len(old):]
		if !bytes.HasPrefix(rest, []byte(tag+">")) && !bytes.Contains(rest[:minInt(len(rest), 40)], []byte(":"+tag+">")) {
			continue
		}
		var esc bytes.Buffer
		_ = xml.EscapeText(&esc, []byte(escaped))
		out := append([]byte{}, body[:i+1]...)
		out = append(out, esc.Bytes()...)
		return append(out, body[i+1+len(text):]...)
	}
	return body
}

// xmlTexts are the ways a client may have written s as XML text.
func xmlTexts(s string) []string {
	var goEsc bytes.Buffer
	_ = xml.EscapeText(&goEsc, []byte(s))
	minimal := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	return []string{minimal, goEsc.String()}
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// ---- raw device mappings ----
//
// vcsim 0.24.2 type-asserts every disk backing to VirtualDiskFlatVer2BackingInfo when it
// recomputes a VM's file layout (ReconfigVM_Task, RefreshStorageInfo, CloneVM_Task), and
// panics on a raw device mapping. So an RDM is made as a flat disk through the simulator's
// own methods and then given its RDM backing here; around those three methods the extension
// hands the simulator flat stand-ins and puts the RDM backings back afterwards.

// rdmBacking is the raw device mapping backing a flat disk becomes.
func rdmBacking(flat *types.VirtualDiskFlatVer2BackingInfo, compat string) *types.VirtualDiskRawDiskMappingVer1BackingInfo {
	mode := flat.DiskMode
	if compat == string(types.VirtualDiskCompatibilityModePhysicalMode) {
		mode = string(types.VirtualDiskModeIndependent_persistent) // physical RDMs are never snapshotted
	}
	lun := strings.ReplaceAll(uuid.NewSHA1(uuid.NameSpaceOID, []byte(flat.FileName)).String(), "-", "")
	return &types.VirtualDiskRawDiskMappingVer1BackingInfo{
		VirtualDeviceFileBackingInfo: flat.VirtualDeviceFileBackingInfo,
		LunUuid:                      "0200000000" + lun + "564d77617265",
		DeviceName:                   "vml.0200000000" + lun + "564d77617265",
		CompatibilityMode:            compat,
		DiskMode:                     mode,
		Uuid:                         flat.Uuid,
	}
}

// adminRDM: POST /hypersdk-sim/rdm?vm=MOREF&disk=KEY&mode=physical|virtual turns the VM's flat
// disk with device key KEY into a raw device mapping in that compatibility mode.
func (x *extension) adminRDM(w http.ResponseWriter, r *http.Request) {
	if !postOnly(w, r) {
		return
	}
	vm := vmFromQuery(w, r)
	if vm == nil {
		return
	}
	q := r.URL.Query()
	compat := map[string]string{"physical": "physicalMode", "virtual": "virtualMode"}[q.Get("mode")]
	if compat == "" {
		http.Error(w, "mode must be physical or virtual", http.StatusBadRequest)
		return
	}
	var key int32
	if _, err := fmt.Sscan(q.Get("disk"), &key); err != nil {
		http.Error(w, "disk must be a device key", http.StatusBadRequest)
		return
	}
	found := false
	simulator.Map.WithLock(vm, func() {
		devices := vm.Config.Hardware.Device
		for _, d := range devices {
			disk, ok := d.(*types.VirtualDisk)
			if !ok || disk.Key != key {
				continue
			}
			if flat, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				disk.Backing = rdmBacking(flat, compat)
				found = true
			}
		}
		if found {
			simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
		}
	})
	if !found {
		http.Error(w, fmt.Sprintf("%s has no flat disk with key %d", vm.Self.Value, key), http.StatusNotFound)
		return
	}
	writeJSON(w, map[string]interface{}{"vm": vm.Self.Value, "disk": key, "compatibility_mode": compat})
}

// flatStandIns gives the simulator flat backings for the VM's RDMs; the returned func puts
// the RDM backings back (keeping a file name the simulator may have changed).
func flatStandIns(ref types.ManagedObjectReference) (restore func()) {
	vm := findVM(ref)
	if vm == nil {
		return func() {}
	}
	rdms := map[int32]*types.VirtualDiskRawDiskMappingVer1BackingInfo{}
	simulator.Map.WithLock(vm, func() {
		for _, d := range vm.Config.Hardware.Device {
			if disk, ok := d.(*types.VirtualDisk); ok {
				if rdm, ok := disk.Backing.(*types.VirtualDiskRawDiskMappingVer1BackingInfo); ok {
					rdms[disk.Key] = rdm
					disk.Backing = &types.VirtualDiskFlatVer2BackingInfo{
						VirtualDeviceFileBackingInfo: rdm.VirtualDeviceFileBackingInfo,
						DiskMode:                     rdm.DiskMode,
						Uuid:                         rdm.Uuid,
					}
				}
			}
		}
	})
	if len(rdms) == 0 {
		return func() {}
	}
	return func() {
		simulator.Map.WithLock(vm, func() {
			devices := vm.Config.Hardware.Device
			for _, d := range devices {
				disk, ok := d.(*types.VirtualDisk)
				if !ok {
					continue
				}
				rdm := rdms[disk.Key]
				if flat, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok && rdm != nil {
					rdm.VirtualDeviceFileBackingInfo = flat.VirtualDeviceFileBackingInfo
					disk.Backing = rdm
				}
			}
			simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
		})
	}
}
