// Command vsphere_sim is the vSphere test server used by HyperSDK's test-suite.
//
// It runs govmomi's vCenter simulator (vcsim, the Debian 0.24.2 package) and
// extends it with what HyperSDK's exporter needs but vcsim 0.24.2 lacks:
// VirtualMachine.ExportVm with a real HttpNfcLease life-cycle, NFC disk
// downloads, OvfManager.CreateDescriptor, and a few fixes so that pyvmomi
// can talk to it exactly as to vCenter. See extension.go for the design.
//
// Build (offline, GOPATH mode):
//
//	GO111MODULE=off GOPROXY=off GOPATH=/usr/share/gocode go build -o vsphere-sim .
//
// On start-up it prints a single JSON line on stdout describing how to
// connect; it runs until SIGTERM/SIGINT.
package main

import (
	"crypto/sha1"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

// APIVersion is what the simulator reports. pyvmomi only exposes properties
// such as HttpNfcLease.transferProgress when the server claims a full
// four-part 7.0 version ("7.0" alone makes it fall back to 6.0).
const APIVersion = "7.0.0.0"

func main() {
	var (
		listen       = flag.String("listen", "127.0.0.1", "address to listen on")
		port         = flag.Int("port", 0, "port to listen on (0 = pick a free port)")
		username     = flag.String("username", "administrator@vsphere.local", "login user name")
		password     = flag.String("password", "Passw0rd!", "login password")
		certOut      = flag.String("cert-out", "", "write the generated server certificate (PEM) to this file")
		leaseTimeout = flag.Duration("lease-timeout", 300*time.Second, "HttpNfcLease inactivity timeout")
		readyDelay   = flag.Duration("lease-ready-delay", 200*time.Millisecond, "time an HttpNfcLease stays 'initializing'")
		nfcRate      = flag.Int64("nfc-rate", 0, "throttle each NFC download to this many bytes/second (0 = unlimited)")
		userGuide    = flag.Bool("user-guide-inventory", true, "shape the inventory like the user guide (dc, vm/prod/*, vm/dev/app01)")
		extraVMs     = flag.Int("extra-vms", 0, "add this many VMs under <dc>/vm/fleet/<group>/ (a large inventory)")
		trace        = flag.Bool("trace", false, "log SOAP traffic to stderr")
	)
	flag.Parse()
	log.SetPrefix("vsphere-sim: ")
	simulator.Trace = *trace

	cert, pemBytes, err := newCertificate()
	if err != nil {
		log.Fatalf("certificate: %v", err)
	}
	certFile := *certOut
	if certFile == "" {
		f, err := os.CreateTemp("", "vsphere-sim-*.pem")
		if err != nil {
			log.Fatal(err)
		}
		certFile = f.Name()
		f.Close()
	}
	if err := os.WriteFile(certFile, pemBytes, 0o644); err != nil {
		log.Fatalf("writing certificate: %v", err)
	}

	model := simulator.VPX()
	model.Autostart = false // VMs start powered off, like an export-ready inventory
	model.ServiceContent.About.ApiVersion = APIVersion
	model.ServiceContent.About.Version = "7.0.0"
	model.ServiceContent.About.FullName = "VMware vCenter Server 7.0.0 build-15952498 (HyperSDK simulator)"
	if *userGuide {
		// One cluster with one host and five VMs; shapeInventory renames and
		// files them. No standalone host so the VM count is exact.
		model.Host = 0
		model.ClusterHost = 1
		model.Machine = len(userGuideVMs)
	}
	if err := model.Create(); err != nil {
		log.Fatalf("creating model: %v", err)
	}
	if *userGuide {
		if err := shapeInventory(model); err != nil {
			log.Fatalf("shaping inventory: %v", err)
		}
	}

	if *extraVMs < 0 {
		log.Fatalf("-extra-vms must be >= 0, not %d", *extraVMs)
	}
	started := time.Now()
	if err := addFleet(model, *extraVMs); err != nil {
		log.Fatalf("adding %d VMs: %v", *extraVMs, err)
	}
	syncAllConnected()     // no device of a powered-off VM is connected, as on vCenter
	fixAllGuestFullNames() // "Other (32-bit)", not "otherGuest"
	if *extraVMs > 0 {
		log.Printf("added %d VMs in %.1fs", *extraVMs, time.Since(started).Seconds())
	}

	model.Service.Listen = &url.URL{
		Host: fmt.Sprintf("%s:%d", *listen, *port),
		User: url.UserPassword(*username, *password),
	}
	model.Service.TLS = newTLSConfig(cert)
	model.Service.RegisterEndpoints = true

	thumb := sha1.Sum(cert.Certificate[0])
	ext := newExtension(extensionConfig{
		thumbprint:   colonHex(thumb[:]),
		leaseTimeout: *leaseTimeout,
		readyDelay:   *readyDelay,
		nfcRate:      *nfcRate,
	})

	server := model.Service.NewServer()
	// The simulator's ServeMux is private to NewServer and already serving;
	// swap the http.Server's handler for our middleware before anybody can
	// know the port (the ready line below has not been printed yet).
	ext.sim = server.Config.Handler
	server.Config.Handler = ext

	dc := "DC0"
	if *userGuide {
		dc = "dc"
	}
	ready := map[string]interface{}{
		"url":        "https://" + server.Listener.Addr().String() + "/sdk",
		"host":       server.Listener.Addr().String(),
		"username":   *username,
		"password":   *password,
		"cert":       certFile,
		"thumbprint": colonHex(thumb[:]),
		"datacenter": dc,
		"datastore":  "LocalDS_0",
		"pid":        os.Getpid(),
	}
	line, _ := json.Marshal(ready)
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	// Deliberately no server.Close(): it waits for outstanding requests and
	// hangs on long-polling WaitForUpdates calls. Just drop the datastore
	// temp dirs and exit.
	model.Remove()
	if *certOut == "" {
		os.Remove(certFile)
	}
	os.Exit(0)
}

// colonHex formats b as upper-case hex pairs separated by colons, the form
// vSphere uses for SSL thumbprints.
func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}
