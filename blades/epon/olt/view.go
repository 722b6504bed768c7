package olt

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/cgoa/cgoa/blades/epon/dba"
)

// ErrNoONU is returned for an LLID or MAC the port does not know.
var ErrNoONU = errors.New("no such ONU")

// PONView is one line of `show pon`.
type PONView struct {
	Name       string   `json:"name"`
	MAC        string   `json:"mac"`
	LineRate   int64    `json:"line_rate_bps"`
	DBA        string   `json:"dba"`
	MaxCycleUs float64  `json:"max_cycle_us"`
	MaxWindow  int      `json:"max_window_bytes"`
	GuardNs    int64    `json:"guard_ns"`
	MaxONUs    int      `json:"max_onus"`
	Registered int      `json:"registered"`
	Pending    int      `json:"registering"`
	Known      int      `json:"known"`
	Stats      PONStats `json:"stats"`
}

// SLAView is an ONU's service level as configured.
type SLAView struct {
	Guaranteed int64  `json:"guaranteed_bps"`
	Peak       int64  `json:"peak_bps"`
	Error      string `json:"error,omitempty"`
}

// ONUView is one line of `show onu [PON]`.
type ONUView struct {
	PON   string `json:"pon"`
	LLID  uint16 `json:"llid"`
	MAC   string `json:"mac"`
	State string `json:"state"`
	// RTT is dot3MpcpRoundTripTime, quanta; RTTUs and DistanceKm read it
	// as time and as fibre length (5 µs/km).
	RTT           int64    `json:"rtt_tq"`
	RTTUs         float64  `json:"rtt_us"`
	DistanceKm    float64  `json:"distance_km"`
	PendingGrants uint8    `json:"pending_grants"`
	OAM           string   `json:"oam"`
	Loopback      bool     `json:"loopback"`
	SLA           SLAView  `json:"sla"`
	Stats         ONUStats `json:"stats"`
}

// Name is the PON port's name.
func (o *OLT) Name() string { return o.cfg.Name }

// Stats returns the port's counters.
func (o *OLT) Stats() PONStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

// ShowPON returns the port's `show pon` line.
func (o *OLT) ShowPON() PONView {
	o.mu.Lock()
	defer o.mu.Unlock()
	v := PONView{
		Name: o.cfg.Name, MAC: o.cfg.MAC.String(), LineRate: o.cfg.LineRate, DBA: o.alg.Name(),
		MaxCycleUs: float64(o.cfg.MaxCycle) * 16 / 1000, MaxWindow: o.pon.MaxWindow, GuardNs: o.cfg.Guard * 16,
		MaxONUs: o.cfg.MaxONUs, Known: len(o.known), Stats: o.stats,
	}
	for _, u := range o.slots {
		switch {
		case u == nil:
		case u.state == registered:
			v.Registered++
		default:
			v.Pending++
		}
	}
	return v
}

func (o *OLT) view(u *onu) ONUView {
	v := ONUView{
		PON: o.cfg.Name, LLID: u.llid, MAC: u.mac.String(), State: u.state.String(), PendingGrants: u.pending,
		OAM: u.oam.state.String(), Loopback: u.oam.loopback, SLA: SLAView{Guaranteed: u.sla.Guaranteed, Peak: u.sla.Peak, Error: u.slaErr},
		Stats: u.stats,
	}
	if u.state != unregistered {
		v.RTT = u.rtt
		v.RTTUs = float64(u.rtt) * 16 / 1000
		v.DistanceKm = float64(u.rtt) / 2 / quantaPerKm
	}
	return v
}

// ShowONUs returns `show onu` for this port: every ONU known, registered
// ones first by LLID, then the others by MAC.
func (o *OLT) ShowONUs() []ONUView {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]ONUView, 0, len(o.known))
	for _, u := range o.known {
		out = append(out, o.view(u))
	}
	slices.SortFunc(out, func(a, b ONUView) int {
		ra, rb := a.State == "deregistered", b.State == "deregistered"
		switch {
		case ra != rb:
			if ra {
				return 1
			}
			return -1
		case !ra && a.LLID != b.LLID:
			return int(a.LLID) - int(b.LLID)
		}
		return strings.Compare(a.MAC, b.MAC)
	})
	return out
}

// ONU returns the view of the ONU with llid, or false.
func (o *OLT) ONU(llid uint16) (ONUView, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.byLLID(llid)
	if u == nil {
		return ONUView{}, false
	}
	return o.view(u), true
}

func (o *OLT) byLLID(llid uint16) *onu {
	if s := int(llid) - int(o.cfg.LLIDBase); s >= 0 && s < len(o.slots) {
		return o.slots[s]
	}
	return nil
}

// find resolves an operator's ONU argument: an LLID (decimal or 0x hex)
// or a MAC address.
func (o *OLT) find(target string) (*onu, error) {
	if mac, err := net.ParseMAC(target); err == nil {
		if u := o.known[string(mac)]; u != nil {
			return u, nil
		}
		return nil, fmt.Errorf("olt: %s: MAC %s: %w", o.cfg.Name, mac, ErrNoONU)
	}
	n, err := strconv.ParseUint(target, 0, 16)
	if err != nil {
		return nil, fmt.Errorf("olt: %s: %q is neither an LLID nor a MAC address", o.cfg.Name, target)
	}
	if u := o.byLLID(uint16(n)); u != nil {
		return u, nil
	}
	return nil, fmt.Errorf("olt: %s: LLID %d: %w", o.cfg.Name, n, ErrNoONU)
}

// Deregister is the operator's `onu deregister`: target is an LLID
// (decimal or 0x hex) or a MAC address. The ONU is sent REGISTER with
// the deregister flag and its LLID freed; it may register again in a
// later discovery window.
func (o *OLT) Deregister(target string) error {
	o.mu.Lock()
	defer o.unlock()
	u, err := o.find(target)
	if err != nil {
		return err
	}
	if u.state == unregistered {
		return fmt.Errorf("olt: %s: ONU %s is not registered", o.cfg.Name, u.mac)
	}
	o.deregister(u, "operator", false)
	return nil
}

// SetSLA sets an ONU's guaranteed and peak rates (bit/s; zero is the
// default equal share and no peak), by MAC, before or after it
// registers. The DBA admits it when the ONU is registered; a guarantee
// the cycle cannot carry is refused and the ONU stays best effort.
func (o *OLT) SetSLA(mac net.HardwareAddr, s dba.SLA) error {
	if len(mac) != 6 {
		return fmt.Errorf("olt: %s: SLA for MAC %v: want 6 bytes", o.cfg.Name, mac)
	}
	if s.Guaranteed < 0 || s.Peak < 0 || (s.Peak != 0 && s.Peak < s.Guaranteed) {
		return fmt.Errorf("olt: %s: SLA guaranteed %d peak %d bit/s: want 0 <= guaranteed <= peak", o.cfg.Name, s.Guaranteed, s.Peak)
	}
	o.mu.Lock()
	defer o.unlock()
	u := o.known[string(mac)]
	if u == nil {
		u = &onu{mac: append(net.HardwareAddr(nil), mac...), key: string(mac), slot: -1}
		o.known[u.key] = u
	}
	u.sla = s
	o.applySLA(u)
	if u.slaErr != "" && u.slot >= 0 {
		return fmt.Errorf("olt: %s: ONU %s: %s", o.cfg.Name, mac, u.slaErr)
	}
	return nil
}
