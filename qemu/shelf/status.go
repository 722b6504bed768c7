package shelf

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/vm"
)

// BladeStatus is one slot's line of the status.
type BladeStatus struct {
	Slot   int               `json:"slot"`
	Role   string            `json:"role"`
	State  vm.State          `json:"state"`
	Pid    int               `json:"pid,omitempty"`
	Uptime float64           `json:"uptime_s,omitempty"` // since QEMU started
	Boots  int               `json:"boots,omitempty"`    // boots through the boot ROM since insertion (resets count)
	Links  map[string]string `json:"links"`              // port -> up/down (as set on the backplane)
	Info   Info              `json:"info"`
	// Image is what the boot ROM booted: bank, image version, and "trial" on a trial boot
	// ("A 0.1.0", "B 0.2.0 trial").
	Image   string `json:"image,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// FarEndStatus is a host far end's line of the status.
type FarEndStatus struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
	farend.Counters
}

// Status is the whole shelf.
type Status struct {
	Name    string         `json:"name"`
	RunDir  string         `json:"run_dir"`
	Blades  []BladeStatus  `json:"blades"`
	FarEnds []FarEndStatus `json:"far_ends"`
}

// AllUp reports whether every blade is up.
func (st Status) AllUp() bool {
	for _, b := range st.Blades {
		if b.State != vm.Up {
			return false
		}
	}
	return len(st.Blades) > 0
}

// Status reports every slot. For blades that are up it asks the blade
// (show version/slot json) once per boot.
func (s *Shelf) Status(ctx context.Context) Status {
	st := Status{Name: s.topo.Name, RunDir: s.runDir}
	s.mu.Lock()
	slots := sortedSlots(s.blades)
	s.mu.Unlock()
	st.Blades = make([]BladeStatus, len(slots))
	var wg sync.WaitGroup
	for i, slot := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.Blades[i] = s.bladeStatus(ctx, slot)
		}()
	}
	wg.Wait()
	s.mu.Lock()
	for _, c := range s.topo.HostEnds() {
		fs := FarEndStatus{Name: c.B.Port}
		switch fe := s.farends[c.B.Port].(type) {
		case *farend.Endpoint:
			fs.Up, fs.Counters = fe.Up(), fe.Counters()
		case *farend.ONU:
			fs.Up, fs.Counters = fe.PON().Up(), fe.PON().Counters()
		}
		st.FarEnds = append(st.FarEnds, fs)
	}
	s.mu.Unlock()
	return st
}

func (s *Shelf) bladeStatus(ctx context.Context, slot int) BladeStatus {
	s.mu.Lock()
	bl := s.blades[slot]
	v := bl.vm
	bs := BladeStatus{Slot: slot, Role: string(bl.b.Role), State: vm.Down, Links: map[string]string{}}
	for _, port := range s.topo.Ports(slot) {
		_, c, _ := s.topo.Peer(slot, port)
		up := !s.cut[c] && s.present(c.A) && s.present(c.B)
		bs.Links[port] = map[bool]string{true: "up", false: "down"}[up]
	}
	info, iboot, launches := bl.info, bl.iboot, bl.launches
	bs.Problem = bl.problem
	if bl.boot.Bank != 0 {
		bs.Image = fmt.Sprintf("%v %s", bl.boot.Bank, bl.boot.Header.Version)
		if bl.boot.Trial {
			bs.Image += " trial"
		}
	}
	if bl.relaunching {
		bs.State = vm.Booting
	}
	s.mu.Unlock()
	if v == nil {
		return bs
	}
	bs.Pid = v.Pid()
	bs.State = v.State(ctx)
	if bs.State == vm.Down {
		bs.Pid = 0
		return bs
	}
	bs.Uptime = time.Since(v.Started()).Round(100 * time.Millisecond).Seconds()
	bs.Boots = launches
	if bs.State == vm.Up && iboot != bs.Boots {
		info = s.askInfo(ctx, v)
		s.mu.Lock()
		if bl.vm == v {
			bl.info, bl.iboot = info, bs.Boots
		}
		s.mu.Unlock()
	}
	bs.Info = info // from this boot, or empty until the blade answered
	return bs
}

// askInfo asks the blade what it is. A blade that does not answer is
// reported, not fatal.
func (s *Shelf) askInfo(ctx context.Context, v *vm.VM) Info {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var info Info
	if out, err := v.Console().Exec(ctx, "show version json"); err == nil {
		json.Unmarshal([]byte(out), &info)
	}
	if out, err := v.Console().Exec(ctx, "show slot json"); err == nil {
		var slot struct {
			Serial   string `json:"serial"`
			Hostname string `json:"hostname"`
		}
		if json.Unmarshal([]byte(out), &slot) == nil {
			info.Serial, info.Hostname = slot.Serial, slot.Hostname
		}
	}
	return info
}

// WriteTable renders the status for a terminal.
func (st Status) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "shelf %s (%s)\n", st.Name, st.RunDir)
	fmt.Fprintf(w, "%-4s %-6s %-7s %7s %5s %-10s %-8s %-15s %s\n", "SLOT", "ROLE", "STATE", "UPTIME", "BOOTS", "HOSTNAME", "VERSION", "IMAGE", "LINKS")
	for _, b := range st.Blades {
		var links []string
		for _, port := range sortedPorts(b.Links) {
			mark := "+"
			if b.Links[port] != "up" {
				mark = "-"
			}
			links = append(links, mark+port)
		}
		up := "-"
		if b.Uptime > 0 {
			up = fmt.Sprintf("%.1fs", b.Uptime)
		}
		fmt.Fprintf(w, "%-4d %-6s %-7s %7s %5d %-10s %-8s %-15s %s\n", b.Slot, b.Role, b.State, up, b.Boots,
			dash(b.Info.Hostname), dash(b.Info.Version), dash(b.Image), strings.Join(links, " "))
		if b.Problem != "" {
			fmt.Fprintf(w, "     problem: %s\n", b.Problem)
		}
	}
	for _, f := range st.FarEnds {
		state := "up"
		if !f.Up {
			state = "down"
		}
		fmt.Fprintf(w, "host %-14s %-4s rx %d frames %d bytes, tx %d frames\n", f.Name, state, f.RxFrames, f.RxBytes, f.TxFrames)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedPorts(m map[string]string) []string {
	var ps []string
	for p := range m {
		ps = append(ps, p)
	}
	// PCI order reads like the blade's front panel.
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && portLess(ps[j], ps[j-1]); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	return ps
}
