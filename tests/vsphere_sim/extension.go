package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// Why a middleware?
//
// vcsim dispatches a SOAP call by reflection on the Go type of the target
// object, and the rest of the simulator type-asserts *simulator.VirtualMachine
// and *simulator.PropertyCollector, so neither can be replaced by a wrapper
// type that would gain ExportVm or a fixed Fetch. Instead the extension sits
// in front of the simulator's http.Handler:
//
//   - SOAP ExportVm (VirtualMachine) and CreateDescriptor (OvfManager) are
//     answered here;
//   - SOAP Fetch (pyvmomi's property accessor) of a property that is unset is
//     answered here with an empty result, because vcsim 0.24.2 panics on it
//     (index out of range in PropertyCollector.Fetch) and drops the connection;
//   - /nfc/<lease>/<file> downloads and /hypersdk-sim/* admin endpoints are
//     served here;
//   - everything else goes to the simulator untouched.
//
// The HttpNfcLease objects themselves are ordinary registry objects (see
// lease.go): the simulator's own dispatcher calls their HttpNfcLease* methods
// and its PropertyCollector serves their properties, including
// WaitForUpdatesEx notifications.

type extensionConfig struct {
	thumbprint   string
	leaseTimeout time.Duration
	readyDelay   time.Duration
	nfcRate      int64
}

type extension struct {
	extensionConfig
	sim http.Handler // the simulator's own handler

	mu      sync.Mutex
	leases  map[string]*nfcLease // by moref value
	counter int64

	// Fault injection for retry tests: the next dropCount GET downloads are
	// cut after dropAfter bytes, as a flaky network or host would.
	dropAfter int64
	dropCount int

	// Fault injection for lease tests: the next leaseFaultCount ExportVm calls
	// are refused ("refuse"), or their lease goes to the error state instead of
	// ready ("error"), or stays initializing for good ("never-ready").
	leaseFault      string
	leaseFaultCount int

	// pages are the unanswered rest of paged RetrievePropertiesEx calls, by token (paging.go).
	pages map[string]*retrievePage

	// denials are the privileges withheld from the user: privilege id -> entity ids, "*" for
	// every entity (controls.go).
	denials map[string]map[string]bool

	// clockOffset is added to the wall clock for lease deadlines: tests move time on
	// (POST /hypersdk-sim/advance-clock) instead of sleeping through a lease timeout.
	clockOffset time.Duration
}

// now is the time lease deadlines are measured against.
func (x *extension) now() time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	return time.Now().Add(x.clockOffset)
}

// takeLeaseFault returns the lease fault to inject into this ExportVm call, if any.
func (x *extension) takeLeaseFault() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.leaseFaultCount <= 0 {
		return ""
	}
	x.leaseFaultCount--
	return x.leaseFault
}

func newExtension(cfg extensionConfig) *extension {
	return &extension{
		extensionConfig: cfg,
		leases:          map[string]*nfcLease{},
		pages:           map[string]*retrievePage{},
		denials:         map[string]map[string]bool{},
	}
}

// sniff matches the method element that opens the SOAP body, e.g.
// `<soapenv:Body><ExportVm xmlns="urn:vim25">`.
var sniff = regexp.MustCompile(`<(?:[A-Za-z0-9_]+:)?Body[^>]*>\s*<(?:[A-Za-z0-9_]+:)?([A-Za-z_]+)[\s>/]`)

func (x *extension) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/nfc/"):
		x.serveNFC(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/hypersdk-sim/"):
		x.serveAdmin(w, r)
		return
	case r.Method == http.MethodPost && (r.URL.Path == vim25.Path || r.URL.Path == vim25.Path+"/vimService"):
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if m := sniff.FindSubmatch(body); m != nil {
			if x.handleSOAP(w, r, string(m[1]), body) {
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	x.sim.ServeHTTP(w, r)
}

// fetchResponse is an empty response to the undocumented Fetch method.
type fetchResponse struct{}

// handleSOAP answers the SOAP methods the extension implements. It returns
// false to let the simulator handle the request.
func (x *extension) handleSOAP(w http.ResponseWriter, r *http.Request, method string, body []byte) bool {
	switch method {
	case "Fetch":
		x.serveFetch(w, r, body)
		return true
	case "ExportVm", "CreateDescriptor",
		"RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "CancelRetrievePropertiesEx",
		"HasPrivilegeOnEntities", "HasPrivilegeOnEntity", "HasUserPrivilegeOnEntities", "FetchUserPrivilegeOnEntities",
		"CreateVM_Task", "CreateFolder", "Rename_Task", "CloneVM_Task", "ReconfigVM_Task", "RefreshStorageInfo",
		"PowerOnVM_Task", "PowerOffVM_Task":
	default:
		return false
	}
	typeFunc := func(name string) (reflect.Type, bool) {
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[i+1:]
		}
		return types.TypeFunc()(name)
	}
	req, err := simulator.UnmarshalBody(typeFunc, body)
	if err != nil {
		log.Printf("%s: %v", method, err)
		return false
	}

	if !x.authenticated(r) {
		writeFault(w, "", &types.NotAuthenticated{NoPermission: types.NoPermission{Object: req.This, PrivilegeId: "System.View"}})
		return true
	}

	switch b := req.Body.(type) {
	case *types.RetrievePropertiesEx:
		if b.Options.MaxObjects <= 0 {
			return false
		}
		x.pageRetrieval(w, r, body, int(b.Options.MaxObjects))
	case *types.ContinueRetrievePropertiesEx:
		x.continueRetrieval(w, b)
	case *types.CancelRetrievePropertiesEx:
		x.cancelRetrieval(w, b)
	case *types.HasPrivilegeOnEntities:
		x.serveHasPrivilegeOnEntities(w, b)
	case *types.HasPrivilegeOnEntity:
		x.serveHasPrivilegeOnEntity(w, b)
	case *types.HasUserPrivilegeOnEntities:
		x.serveHasUserPrivilegeOnEntities(w, b)
	case *types.FetchUserPrivilegeOnEntities:
		x.serveFetchUserPrivilegeOnEntities(w, b)
	case *types.ReconfigVM_Task, *types.CloneVM_Task, *types.RefreshStorageInfo:
		// The simulator cannot handle RDM backings here (controls.go); guest full names as
		// vCenter shows them.
		restore := flatStandIns(soapThis(b))
		rec := x.forward(r, escapeNameInBody(body, b))
		restore()
		fixAllGuestFullNames()
		syncAllConnected()
		copyRecorded(w, rec)
	case *types.CreateVM_Task, *types.CreateFolder, *types.Rename_Task:
		// Names escaped as vCenter stores them; guest full names and connected devices as
		// vCenter shows them.
		rec := x.forward(r, escapeNameInBody(body, b))
		fixAllGuestFullNames()
		syncAllConnected()
		copyRecorded(w, rec)
	case *types.PowerOnVM_Task, *types.PowerOffVM_Task:
		// The simulator runs the task before it answers: devices connect or disconnect now.
		rec := x.forward(r, body)
		if vm := findVM(soapThis(b)); vm != nil {
			_, on := b.(*types.PowerOnVM_Task)
			syncConnected(vm, on)
		}
		copyRecorded(w, rec)
	case *types.ExportVm:
		if x.denied("VApp.Export", b.This) {
			fault := &types.NoPermission{Object: b.This, PrivilegeId: "VApp.Export"}
			writeFault(w, faultMessage(fault), fault)
			return true
		}
		lease, fault := x.exportVM(b.This)
		if fault != nil {
			writeFault(w, faultMessage(fault), fault)
			return true
		}
		writeResult(w, "ExportVmResponse", &types.ExportVmResponse{Returnval: lease})
	case *types.CreateDescriptor:
		res, fault := createDescriptor(b)
		if fault != nil {
			writeFault(w, faultMessage(fault), fault)
			return true
		}
		writeResult(w, "CreateDescriptorResponse", &types.CreateDescriptorResponse{Returnval: *res})
	default:
		return false
	}
	return true
}

// soapThis is the managed object a decoded request is addressed to.
func soapThis(req interface{}) types.ManagedObjectReference {
	v := reflect.ValueOf(req)
	if v.Kind() == reflect.Ptr {
		v = v.Elem()
	}
	if f := v.FieldByName("This"); f.IsValid() {
		if ref, ok := f.Interface().(types.ManagedObjectReference); ok {
			return ref
		}
	}
	return types.ManagedObjectReference{}
}

// authenticated is a coarse check: the simulator keeps its session table
// private, so we only require that a session cookie is presented.
func (x *extension) authenticated(r *http.Request) bool {
	c, err := r.Cookie(soap.SessionCookieName)
	return err == nil && c.Value != ""
}

func faultMessage(f types.BaseMethodFault) string {
	switch v := f.(type) {
	case *types.ManagedObjectNotFound:
		return "The object has already been deleted or has not been completely created"
	case *types.InvalidPowerState:
		return fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", v.ExistingState)
	case *types.InvalidArgument:
		return "A specified parameter was not correct: " + v.InvalidProperty
	case *types.InvalidState:
		return "The operation is not allowed in the current state."
	case *types.NoPermission:
		return "Permission to perform this operation was denied."
	case *types.TaskInProgress:
		return "The operation is not allowed in the current state: another task is in progress."
	}
	return ""
}

// ---- SOAP encoding, mirroring simulator.Service.ServeSDK ----

// soapEnvelope is the simulator's envelope (soapenv prefix and the extra
// namespace declarations some clients insist on).
type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

type faultDetail struct {
	Fault types.BaseMethodFault
}

// MarshalXML emits <${Type}Fault xsi:type="${Type}">, which is how pyvmomi
// maps a fault to e.g. vim.fault.InvalidPowerState.
func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:" + vim25.Namespace},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

// methodResult wraps a *Response value in its element, in the vim25 namespace.
type methodResult struct {
	name string
	res  interface{}
}

func (m methodResult) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return e.EncodeElement(m.res, xml.StartElement{Name: xml.Name{Space: "urn:" + vim25.Namespace, Local: m.name}})
}

func writeEnvelope(w http.ResponseWriter, status int, body interface{}) {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	e := xml.NewEncoder(&out)
	err := e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = e.Flush()
	}
	if err != nil {
		log.Printf("encoding SOAP response: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if simulator.Trace {
		log.Printf("Response: %s", out.String())
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out.Bytes())
}

func writeResult(w http.ResponseWriter, name string, res interface{}) {
	writeEnvelope(w, http.StatusOK, struct {
		Res methodResult
	}{methodResult{name, res}})
}

func writeFault(w http.ResponseWriter, msg string, fault types.BaseMethodFault) {
	f := &soapFault{Code: "ServerFaultCode", String: msg}
	f.Detail.Fault = &faultDetail{fault}
	writeEnvelope(w, http.StatusInternalServerError, struct {
		Fault *soapFault
	}{f})
}

// newFault builds a simulator SOAP fault for use as a method body's Fault_.
func newFault(fault types.BaseMethodFault) *soap.Fault {
	return simulator.Fault(faultMessage(fault), fault)
}

// ---- Fetch of unset properties ----

// serveFetch passes a Fetch call to the simulator. vcsim 0.24.2's
// PropertyCollector.Fetch indexes MissingSet[0] when the property is merely
// unset (vm.snapshot, lease.error, ...), panics, and net/http drops the
// connection. vCenter answers such a Fetch with an empty result, which
// pyvmomi turns into None; so we buffer the simulator's answer and
// substitute that empty result if it panicked. Deciding "unset" ourselves
// would be wrong for per-session views such as
// SessionManager.currentSession.
func (x *extension) serveFetch(w http.ResponseWriter, r *http.Request, body []byte) {
	rec := httptest.NewRecorder()
	panicked := func() (panicked bool) {
		defer func() {
			if v := recover(); v != nil {
				log.Printf("Fetch: simulator panicked (%v): answering an empty result", v)
				panicked = true
			}
		}()
		r.Body = io.NopCloser(bytes.NewReader(body))
		x.sim.ServeHTTP(rec, r)
		return false
	}()
	if panicked {
		writeResult(w, "FetchResponse", &fetchResponse{})
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// ---- admin endpoint ----

type leaseReport struct {
	ID               string   `json:"id"`
	VM               string   `json:"vm"`
	VMName           string   `json:"vm_name"`
	State            string   `json:"state"`
	Error            string   `json:"error,omitempty"`
	Progress         int32    `json:"progress"`
	ProgressCalls    int      `json:"progress_calls"`
	ProgressHistory  []int32  `json:"progress_history"`
	Completed        bool     `json:"completed"`
	Aborted          bool     `json:"aborted"`
	TimedOut         bool     `json:"timed_out"`
	ManifestRequests int      `json:"manifest_requests"`
	BytesServed      int64    `json:"bytes_served"`
	Requests         int64    `json:"requests"`
	Files            []string `json:"files"`
}

// serveAdmin implements the test-only endpoints:
//
//	GET /hypersdk-sim/leases  JSON list of every lease ever created, in order.
//	GET /hypersdk-sim/config  the extension's settings.
//	POST /hypersdk-sim/drop-downloads?after=BYTES&count=N  cut the next N
//	     GET downloads after BYTES bytes.
//	POST /hypersdk-sim/lease-fault?mode=refuse|error|never-ready&count=N
//	     the next N ExportVm calls are refused, or their lease fails or never gets ready.
//	POST /hypersdk-sim/advance-clock?seconds=S  move the leases' clock S seconds on
//	     (leases past their deadline then are timed out before it answers).
//	GET|POST /hypersdk-sim/privileges?deny=ID|allow=ID|reset=1[&entity=MOREF]  privileges
//	     withheld from the user (controls.go).
//	POST /hypersdk-sim/datastore?name=NAME&accessible=true|false  a datastore drops or returns.
//	POST /hypersdk-sim/guest?vm=MOREF&tools=running|not-running|not-installed[&guest_id=..]
//	     [&full_name=..][&host_name=..][&ip=..]  what VMware Tools report.
//	POST /hypersdk-sim/encrypt?vm=MOREF[&key_id=..][&provider=..]  the VM becomes encrypted.
//	POST /hypersdk-sim/rdm?vm=MOREF&disk=KEY&mode=physical|virtual  a flat disk becomes an RDM.
func (x *extension) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/hypersdk-sim/drop-downloads":
		if !postOnly(w, r) {
			return
		}
		after, err1 := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		count, err2 := strconv.Atoi(r.URL.Query().Get("count"))
		if err1 != nil || err2 != nil || after < 0 || count < 0 {
			http.Error(w, "after and count must be non-negative integers", http.StatusBadRequest)
			return
		}
		x.mu.Lock()
		x.dropAfter, x.dropCount = after, count
		x.mu.Unlock()
		writeJSON(w, map[string]interface{}{"after": after, "count": count})
	case "/hypersdk-sim/lease-fault":
		if !postOnly(w, r) {
			return
		}
		mode := r.URL.Query().Get("mode")
		count, err := strconv.Atoi(r.URL.Query().Get("count"))
		if err != nil || count < 0 || (mode != "refuse" && mode != "error" && mode != "never-ready") {
			http.Error(w, "mode is refuse, error or never-ready; count a non-negative integer", http.StatusBadRequest)
			return
		}
		x.mu.Lock()
		x.leaseFault, x.leaseFaultCount = mode, count
		x.mu.Unlock()
		writeJSON(w, map[string]interface{}{"mode": mode, "count": count})
	case "/hypersdk-sim/advance-clock":
		if !postOnly(w, r) {
			return
		}
		seconds, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
		if err != nil || seconds < 0 {
			http.Error(w, "seconds must be a non-negative number", http.StatusBadRequest)
			return
		}
		x.mu.Lock()
		x.clockOffset += time.Duration(seconds * float64(time.Second))
		offset := x.clockOffset
		x.mu.Unlock()
		leases := x.leaseList()
		// Expire what is now due before answering: the caller sees the new time's leases.
		for _, l := range leases {
			l.expireIfDue()
		}
		writeJSON(w, map[string]interface{}{"offset_seconds": offset.Seconds()})
	case "/hypersdk-sim/privileges":
		x.adminPrivilegesEndpoint(w, r)
	case "/hypersdk-sim/datastore":
		x.adminDatastore(w, r)
	case "/hypersdk-sim/guest":
		x.adminGuest(w, r)
	case "/hypersdk-sim/encrypt":
		x.adminEncrypt(w, r)
	case "/hypersdk-sim/rdm":
		x.adminRDM(w, r)
	case "/hypersdk-sim/leases":
		leases := x.leaseList()
		sort.Slice(leases, func(i, j int) bool { return leases[i].seq < leases[j].seq })
		out := make([]leaseReport, 0, len(leases))
		for _, l := range leases {
			out = append(out, l.report())
		}
		writeJSON(w, out)
	case "/hypersdk-sim/config":
		writeJSON(w, map[string]interface{}{
			"lease_timeout_seconds": x.leaseTimeout.Seconds(),
			"nfc_rate":              x.nfcRate,
			"thumbprint":            x.thumbprint,
		})
	default:
		http.NotFound(w, r)
	}
}

// postOnly answers 405 to anything but a POST; false when it did.
func postOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return false
	}
	return true
}

// leaseList is every lease the server created, in no order (a copy, taken under the lock).
func (x *extension) leaseList() []*nfcLease {
	x.mu.Lock()
	defer x.mu.Unlock()
	leases := make([]*nfcLease, 0, len(x.leases))
	for _, l := range x.leases {
		leases = append(leases, l)
	}
	return leases
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// findVM returns the simulator VM for ref, or nil.
func findVM(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	if ref.Type != "VirtualMachine" {
		return nil
	}
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
}

// datastorePath resolves "[ds] dir/file.vmdk" to the file in the simulator
// datastore's local directory.
func datastorePath(name string) (string, error) {
	var p struct{ ds, rel string }
	if !strings.HasPrefix(name, "[") || !strings.Contains(name, "]") {
		return "", fmt.Errorf("not a datastore path: %q", name)
	}
	i := strings.Index(name, "]")
	p.ds, p.rel = name[1:i], strings.TrimSpace(name[i+1:])
	for _, e := range simulator.Map.All("Datastore") {
		ds, ok := e.(*simulator.Datastore)
		if !ok || ds.Name != p.ds {
			continue
		}
		return path.Join(ds.Info.GetDatastoreInfo().Url, p.rel), nil
	}
	return "", fmt.Errorf("datastore %q not found", p.ds)
}

// nfcLease must be a registry object (a mo.Reference embedding mo.HttpNfcLease).
var _ mo.Reference = (*nfcLease)(nil)
