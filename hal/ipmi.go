package hal

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/u-root/u-root/pkg/ipmi"
)

// IPMI commands used here beyond what u-root's ipmi package wraps.
const (
	netfnSensor         ipmi.NetFn   = 0x04
	netfnStorage        ipmi.NetFn   = 0x0a
	cmdGetSensorReading ipmi.Command = 0x2d
	cmdReserveSDR       ipmi.Command = 0x22
	cmdGetSDR           ipmi.Command = 0x23
	cmdAddSEL           ipmi.Command = 0x44
	cmdGetSELInfo       ipmi.Command = 0x40
)

// BMC is the blade's IPMI controller (the IPMC of an ATCA blade).
type BMC struct {
	mu     sync.Mutex
	path   string
	dev    *ipmi.IPMI
	reason string
}

// Sensor is one sensor with its current reading.
type Sensor struct {
	SensorRecord
	Reading  uint8  `json:"reading"`
	Scanning bool   `json:"scanning"`
	States   uint16 `json:"states"`
	Error    string `json:"error,omitempty"`
}

// IPMIStatus is what `show hardware` reports of the controller.
type IPMIStatus struct {
	Present        bool     `json:"present"`
	Device         string   `json:"device,omitempty"`
	DeviceID       uint8    `json:"device_id"`
	DeviceRevision uint8    `json:"device_revision"`
	Firmware       string   `json:"firmware,omitempty"`
	IPMIVersion    string   `json:"ipmi_version,omitempty"`
	ManufacturerID uint32   `json:"manufacturer_id"`
	ProductID      uint16   `json:"product_id"`
	SELEntries     int      `json:"sel_entries"`
	Sensors        []Sensor `json:"sensors"`
	Error          string   `json:"error,omitempty"`
	Reason         string   `json:"reason,omitempty"`
}

func absentBMC(reason string) *BMC { return &BMC{reason: reason} }

// openBMC opens an IPMI device node; a missing node means no controller.
func openBMC(path string) *BMC {
	f, err := os.Stat(path)
	if err != nil || f.Mode()&os.ModeDevice == 0 {
		return &BMC{reason: fmt.Sprintf("%s: no such device", path)}
	}
	d, err := ipmi.OpenPath(path)
	if err != nil {
		return &BMC{reason: fmt.Sprintf("%s: %v", path, err)}
	}
	return &BMC{path: path, dev: d}
}

// Present reports whether the blade has a usable IPMI controller.
func (b *BMC) Present() bool { return b.dev != nil }

// Close releases the device.
func (b *BMC) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dev == nil {
		return nil
	}
	err := b.dev.Close()
	b.dev = nil
	return err
}

// Status queries the controller: device id, SEL, and every sensor in its SDR repository.
func (b *BMC) Status() IPMIStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := IPMIStatus{Present: b.dev != nil, Device: b.path, Reason: b.reason, Sensors: []Sensor{}}
	if b.dev == nil {
		if s.Reason == "" {
			s.Reason = ErrNotPresent.Error()
		}
		return s
	}
	id, err := b.dev.GetDeviceID()
	if err != nil {
		s.Error = fmt.Sprintf("get device id: %v", err)
		return s
	}
	s.DeviceID, s.DeviceRevision = id.DeviceID, id.DeviceRevision&0x0f
	s.Firmware = fmt.Sprintf("%d.%02x", id.FwRev1&0x7f, id.FwRev2)
	s.IPMIVersion = fmt.Sprintf("%d.%d", id.IpmiVersion&0x0f, id.IpmiVersion>>4)
	s.ManufacturerID = uint32(id.ManufacturerID[0]) | uint32(id.ManufacturerID[1])<<8 | uint32(id.ManufacturerID[2]&0x0f)<<16
	s.ProductID = uint16(id.ProductID[0]) | uint16(id.ProductID[1])<<8
	if info, err := b.dev.SendRecv(netfnStorage, cmdGetSELInfo, nil); err == nil && len(info) >= 4 {
		s.SELEntries = int(info[2]) | int(info[3])<<8
	}
	recs, err := b.sdrsLocked()
	if err != nil {
		s.Error = fmt.Sprintf("read SDR repository: %v", err)
	}
	for _, r := range recs {
		if r.Type != sdrFullSensor && r.Type != sdrCompactSensor {
			continue
		}
		sn := Sensor{SensorRecord: r}
		rd, err := b.dev.SendRecv(netfnSensor, cmdGetSensorReading, []byte{r.Number})
		switch {
		case err != nil:
			sn.Error = err.Error()
		case len(rd) >= 3:
			sn.Reading, sn.Scanning = rd[1], rd[2]&0x40 != 0
			if len(rd) >= 5 {
				sn.States = uint16(rd[3]) | uint16(rd[4])<<8
			}
		}
		s.Sensors = append(s.Sensors, sn)
	}
	return s
}

// sdrsLocked reads every record of the SDR repository. Records are read in 16-byte pieces,
// which every controller supports, instead of asking for whole records.
func (b *BMC) sdrsLocked() ([]SensorRecord, error) {
	res, err := b.dev.SendRecv(netfnStorage, cmdReserveSDR, nil)
	if err != nil || len(res) < 3 {
		return nil, fmt.Errorf("reserve SDR repository: %v", err)
	}
	rsv := [2]byte{res[1], res[2]}
	var out []SensorRecord
	next := uint16(0)
	for i := 0; i < 256 && next != 0xffff; i++ {
		var rec []byte
		var nextID uint16
		for off := 0; ; {
			want := 16
			if len(rec) >= 5 {
				total := int(rec[4]) + 5
				if off >= total {
					break
				}
				want = min(16, total-off)
			} else {
				want = 5
			}
			r, err := b.dev.SendRecv(netfnStorage, cmdGetSDR, []byte{rsv[0], rsv[1], byte(next), byte(next >> 8), byte(off), byte(want)})
			if err != nil {
				return out, fmt.Errorf("get SDR %d: %w", next, err)
			}
			if len(r) < 3 {
				return out, fmt.Errorf("get SDR %d: short answer (%d bytes)", next, len(r))
			}
			nextID = uint16(r[1]) | uint16(r[2])<<8
			rec = append(rec, r[3:]...)
			off += len(r) - 3
			if len(r) == 3 {
				return out, errors.New("get SDR: empty piece")
			}
		}
		rr, err := ParseSDR(rec)
		if err != nil {
			return out, err
		}
		out = append(out, rr)
		next = nextID
	}
	return out, nil
}

// LogEvent writes a firmware event into the controller's System Event Log as an OEM
// non-timestamped record (type 0xE0): "CGOA", a code, and up to 8 bytes of detail.
func (b *BMC) LogEvent(code byte, detail string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dev == nil {
		return fmt.Errorf("hal: ipmi: %w", ErrNotPresent)
	}
	rec := make([]byte, 16)
	rec[2] = 0xe0
	copy(rec[3:], "CGOA")
	rec[7] = code
	copy(rec[8:], detail)
	if _, err := b.dev.SendRecv(netfnStorage, cmdAddSEL, rec); err != nil {
		return fmt.Errorf("hal: ipmi: add SEL entry: %w", err)
	}
	return nil
}

// Firmware event codes written to the SEL.
const (
	EventBoot          byte = 0x01 // firmware started
	EventWatchdogReset byte = 0x02 // the last reset was the watchdog's
	EventHandleOpen    byte = 0x03 // operator opened the hot-swap handle
)
