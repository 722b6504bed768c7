package procmode

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Percentile returns the p-th percentile (nearest rank) of ds in ms.
func Percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// Peer is a side-by-side figure in a bench result.
type Peer struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Result is one metric of a bench report.
type Result struct {
	Metric  string  `json:"metric"`
	Unit    string  `json:"unit"`
	Value   float64 `json:"value"`
	Samples int     `json:"samples"`
	Peer    *Peer   `json:"peer,omitempty"`
}

// Report is the bench JSON (build/bench/<name>.json).
type Report struct {
	Bench   string   `json:"bench"`
	Machine string   `json:"machine"`
	Results []Result `json:"results"`
}

// Machine describes this machine: CPU model and cores.
func Machine() string {
	model := "unknown cpu"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d cores", model, runtime.NumCPU())
}

// WriteReport writes r as indented JSON to path, making its directory.
func WriteReport(path string, r Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// keepalivedConf is a VRRPv3 instance with the given advert interval;
// both routers start as BACKUP with nopreempt so a returning router does
// not take the address back (like the HA core, no pre-emption).
func keepalivedConf(ifname, vip string, advert string, prio int) string {
	return fmt.Sprintf(`global_defs {
    vrrp_version 3
    enable_script_security
}
vrrp_instance cgoa {
    state BACKUP
    nopreempt
    interface %s
    virtual_router_id 51
    priority %d
    advert_int %s
    virtual_ipaddress {
        %s
    }
}
`, ifname, prio, advert, vip)
}

// Keepalived is a VRRP pair on hub 1 (namespaces made by the shelf)
// guarding VIP, each router with a probe responder that answers on any
// address it has.
type Keepalived struct {
	s      *Shelf
	dir    string
	starts int
	procs  map[int]*exec.Cmd
	done   map[int]chan struct{}
	closeR map[int]func()
}

// VIP is the address the keepalived pair moves.
const VIP = "169.254.70.100"

// NewKeepalived makes two router namespaces with the given ids (their
// hosts on hub 1's network, 20..99) running VRRP every advert seconds.
func (s *Shelf) NewKeepalived(advert string, ids [2]int) (*Keepalived, error) {
	k := &Keepalived{s: s, dir: s.t.TempDir(), procs: map[int]*exec.Cmd{}, done: map[int]chan struct{}{}, closeR: map[int]func(){}}
	for _, id := range ids {
		ns := s.mkNS(fmt.Sprintf("k%d", id))
		s.link(ns, "eth0", s.hub[0], fmt.Sprintf("k%d", id), fmt.Sprintf("169.254.70.%d/24", id))
		conf := filepath.Join(k.dir, fmt.Sprintf("k%d.conf", id))
		if err := os.WriteFile(conf, []byte(keepalivedConf("eth0", VIP+"/24", advert, 100)), 0o644); err != nil {
			return nil, err
		}
	}
	s.t.Cleanup(k.stopAll)
	return k, nil
}

func (k *Keepalived) ns(id int) string { return k.s.nsName(fmt.Sprintf("k%d", id)) }

// Start runs router id's keepalived and its probe responder.
func (k *Keepalived) Start(id int) error {
	if err := run("ip", "-n", k.s.hub[0], "link", "set", fmt.Sprintf("k%d", id), "up"); err != nil {
		return err
	}
	conf := filepath.Join(k.dir, fmt.Sprintf("k%d.conf", id))
	// Fresh pid files per start: a killed daemon's child may not be
	// reaped yet, and keepalived refuses to start over a live pid file.
	k.starts++
	cmd := exec.Command("ip", "netns", "exec", k.ns(id), "keepalived", "-n", "-l", "-P", "-f", conf,
		"-p", filepath.Join(k.dir, fmt.Sprintf("k%d-%d.pid", id, k.starts)),
		"-r", filepath.Join(k.dir, fmt.Sprintf("k%d-%d.vrrp.pid", id, k.starts)))
	logf, err := os.OpenFile(filepath.Join(k.dir, fmt.Sprintf("k%d.log", id)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: keepalived forks a VRRP child; a kill takes both.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("keepalived: %w", err)
	}
	logf.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	k.procs[id], k.done[id] = cmd, done
	closeR, err := k.s.responder(k.ns(id), uint8(id))
	if err != nil {
		return err
	}
	k.closeR[id] = closeR
	return nil
}

// Kill pulls router id: kill -9 keepalived, stop its responder and cut
// its link at the hub (keepalived's death alone leaves the address up).
func (k *Keepalived) Kill(id int) {
	run("ip", "-n", k.s.hub[0], "link", "set", fmt.Sprintf("k%d", id), "down")
	if c := k.closeR[id]; c != nil {
		c()
		delete(k.closeR, id)
	}
	if p := k.procs[id]; p != nil {
		syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		<-k.done[id]
		delete(k.procs, id)
	}
	// The VIP may still be configured in the dead router's namespace;
	// remove it so the router returns clean.
	run("ip", "-n", k.ns(id), "addr", "del", VIP+"/24", "dev", "eth0")
}

// Logs returns the routers' keepalived logs.
func (k *Keepalived) Logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(k.dir, "k*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "== %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}

func (k *Keepalived) stopAll() {
	for id := range k.procs {
		k.Kill(id)
	}
}
