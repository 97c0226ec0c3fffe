// Command ovfcheck reads OVF descriptors with govmomi's ovf package (a reader
// independent of the simulator that wrote them and of HyperSDK's Python code)
// and prints, per descriptor, the facts the tests compare with the VM: every
// File, every Disk with its file, capacity and the Item that attaches it (its
// controller's type, subtype and bus, its unit and label), the other drives,
// and VMware's firmware/NVRAM settings.
//
// Usage: ovfcheck FILE.ovf...  (one JSON object per line on stdout; exit 1 on
// the first descriptor that does not parse or does not hold together).
package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/ovf"
)

type controller struct {
	ResourceType uint16 `json:"resource_type"`
	SubType      string `json:"subtype"`
	Address      string `json:"address"`
}

type disk struct {
	DiskID          string     `json:"disk_id"`
	FileHref        string     `json:"file_href"`
	CapacityBytes   string     `json:"capacity_bytes"` // decimal: may exceed what JSON numbers keep exactly
	ElementName     string     `json:"element_name"`
	AddressOnParent string     `json:"address_on_parent"`
	Controller      controller `json:"controller"`
}

type drive struct {
	ResourceType uint16 `json:"resource_type"`
	SubType      string `json:"subtype"`
	ElementName  string `json:"element_name"`
}

type file struct {
	ID   string `json:"id"`
	Href string `json:"href"`
	Size uint   `json:"size"`
}

type report struct {
	Path        string            `json:"path"`
	Name        string            `json:"name"`
	Files       []file            `json:"files"`
	Disks       []disk            `json:"disks"`
	Drives      []drive           `json:"drives"`
	Config      map[string]string `json:"config"`
	ExtraConfig map[string]string `json:"extra_config"`
}

// vmwSettings are VMware's vmw:Config/vmw:ExtraConfig elements, which this
// govmomi version's VirtualHardwareSection does not model.
type vmwSettings struct {
	Config []struct {
		XMLName xml.Name
		Key     string `xml:"key,attr"`
		Value   string `xml:"value,attr"`
	} `xml:",any"`
}

var units = regexp.MustCompile(`^byte(?:\s*\*\s*2\^(\d+))?$`)

func capacity(d ovf.VirtualDiskDesc) (string, error) {
	n, ok := new(big.Int).SetString(d.Capacity, 10)
	if !ok {
		return "", fmt.Errorf("disk %s: capacity %q is not a number", d.DiskID, d.Capacity)
	}
	u := "byte"
	if d.CapacityAllocationUnits != nil {
		u = strings.TrimSpace(*d.CapacityAllocationUnits)
	}
	m := units.FindStringSubmatch(u)
	if m == nil {
		return "", fmt.Errorf("disk %s: unknown capacity units %q", d.DiskID, u)
	}
	if m[1] != "" {
		var shift uint
		fmt.Sscan(m[1], &shift)
		n.Lsh(n, shift)
	}
	return n.String(), nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func check(path string) (*report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env, err := ovf.Unmarshal(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if env.VirtualSystem == nil || env.VirtualSystem.VirtualHardware == nil || len(env.VirtualSystem.VirtualHardware) == 0 {
		return nil, fmt.Errorf("%s: no VirtualSystem with a VirtualHardwareSection", path)
	}
	r := &report{Path: path, Config: map[string]string{}, ExtraConfig: map[string]string{}}
	r.Name = str(env.VirtualSystem.Name)
	hrefs := map[string]string{}
	for _, f := range env.References {
		r.Files = append(r.Files, file{f.ID, f.Href, f.Size})
		hrefs[f.ID] = f.Href
	}
	items := map[string]ovf.ResourceAllocationSettingData{}
	hw := env.VirtualSystem.VirtualHardware[0]
	for _, it := range hw.Item {
		items[it.InstanceID] = it
	}
	attached := map[string]ovf.ResourceAllocationSettingData{} // disk id -> its Item
	for _, it := range hw.Item {
		if it.ResourceType != nil && *it.ResourceType == 17 {
			for _, h := range it.HostResource {
				attached[strings.TrimPrefix(h, "ovf:/disk/")] = it
			}
		} else if it.ResourceType != nil && (*it.ResourceType == 14 || *it.ResourceType == 15 || *it.ResourceType == 16) {
			r.Drives = append(r.Drives, drive{*it.ResourceType, str(it.ResourceSubType), it.ElementName})
		}
	}
	if env.Disk != nil {
		for _, d := range env.Disk.Disks {
			c, err := capacity(d)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			out := disk{DiskID: d.DiskID, CapacityBytes: c}
			if d.FileRef != nil {
				href, ok := hrefs[*d.FileRef]
				if !ok {
					return nil, fmt.Errorf("%s: disk %s names file %s, which References lacks", path, d.DiskID, *d.FileRef)
				}
				out.FileHref = href
			}
			it, ok := attached[d.DiskID]
			if !ok {
				return nil, fmt.Errorf("%s: no Item attaches disk %s", path, d.DiskID)
			}
			out.ElementName = it.ElementName
			out.AddressOnParent = str(it.AddressOnParent)
			parent, ok := items[str(it.Parent)]
			if !ok {
				return nil, fmt.Errorf("%s: disk %s hangs on no controller", path, d.DiskID)
			}
			out.Controller = controller{*parent.ResourceType, str(parent.ResourceSubType), str(parent.Address)}
			r.Disks = append(r.Disks, out)
		}
	}
	// VMware's settings, read from the raw VirtualHardwareSection.
	var raw struct {
		VS struct {
			HW struct {
				Inner []byte `xml:",innerxml"`
			} `xml:"VirtualHardwareSection"`
		} `xml:"VirtualSystem"`
	}
	if err := xml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var s vmwSettings
	if err := xml.Unmarshal(append(append([]byte("<x>"), raw.VS.HW.Inner...), []byte("</x>")...), &s); err == nil {
		for _, c := range s.Config {
			switch c.XMLName.Local {
			case "Config":
				r.Config[c.Key] = c.Value
			case "ExtraConfig":
				r.ExtraConfig[c.Key] = c.Value
			}
		}
	}
	if v, ok := r.ExtraConfig["nvram"]; ok {
		if _, ok := hrefs[strings.TrimPrefix(v, "ovf:/file/")]; !ok {
			return nil, fmt.Errorf("%s: nvram names file %s, which References lacks", path, v)
		}
	}
	return r, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ovfcheck FILE.ovf...")
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[1:] {
		r, err := check(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ovfcheck:", err)
			os.Exit(1)
		}
		enc.Encode(r)
	}
}
