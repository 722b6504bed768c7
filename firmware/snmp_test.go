package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/onu"
	nsutil "github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

// netSNMP runs net-snmp's command-line tools in a namespace, isolated from the host's
// configuration: no MIB files loaded (numeric OIDs only), configuration and persistent
// state in a temporary directory.
type netSNMP struct {
	ns, dir string
}

func newNetSNMP(t *testing.T, ns string) *netSNMP {
	t.Helper()
	for _, tool := range []string{"snmpwalk", "snmpget", "stdbuf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages snmp, coreutils)", tool)
		}
	}
	return &netSNMP{ns: ns, dir: t.TempDir()}
}

func (n *netSNMP) cmd(ctx context.Context, tool string, args ...string) *exec.Cmd {
	// stdbuf: a walk's lines arrive as they are printed, so the test can act mid-walk.
	argv := append([]string{"netns", "exec", n.ns, "stdbuf", "-oL", tool, "-Onqt"}, args...)
	c := exec.CommandContext(ctx, "ip", argv...)
	c.Env = append(os.Environ(), "SNMPCONFPATH="+n.dir, "SNMP_PERSISTENT_DIR="+n.dir, "MIBS=", "MIBDIRS="+n.dir, "HOME="+n.dir)
	return c
}

// values parses "-Onq" output lines ("OID VALUE") into a map and the OIDs in order.
func values(out string) (map[string]string, []string) {
	m := map[string]string{}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		oid, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		// A walk ends with endOfMibView, which the tools print against the last OID.
		if strings.HasPrefix(oid, ".") && !strings.HasPrefix(v, "No more variables") {
			m[oid] = strings.Trim(v, `"`)
			order = append(order, oid)
		}
	}
	return m, order
}

func num(t *testing.T, m map[string]string, oid string) uint64 {
	t.Helper()
	v, ok := m[oid]
	if !ok {
		t.Fatalf("no %s in %v", oid, m)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", oid, v, err)
	}
	return n
}

// oidLess compares dotted OIDs numerically.
func oidLess(a, b string) bool {
	as, bs := strings.Split(strings.Trim(a, "."), "."), strings.Split(strings.Trim(b, "."), ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.ParseUint(as[i], 10, 64)
		y, _ := strconv.ParseUint(bs[i], 10, 64)
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

const (
	oidSysDescr     = ".1.3.6.1.2.1.1.1.0"
	oidEngineTime   = ".1.3.6.1.6.3.10.2.1.3.0"
	oidEngineBoots  = ".1.3.6.1.6.3.10.2.1.2.0"
	oidInPkts       = ".1.3.6.1.2.1.11.1.0"
	oidInGetNexts   = ".1.3.6.1.2.1.11.16.0"
	oidOutGetResps  = ".1.3.6.1.2.1.11.28.0" // snmpOutGetResponses
	oidNotInWindow  = ".1.3.6.1.6.3.15.1.1.2.0"
	oidHCInOctets1  = ".1.3.6.1.2.1.31.1.1.1.6.1"
	oidEntPhysDescr = ".1.3.6.1.2.1.47.1.1.1.1.2.1"
	oidHaSelfSlot   = ".1.3.6.1.4.1.99999.2.1.1.1.1.0"
	oidHaFramesRx   = ".1.3.6.1.4.1.99999.2.1.1.6.2.0"    // cgoaHaFramesReceived
	oidHaForged     = ".1.3.6.1.4.1.99999.2.1.1.6.4.0"    // cgoaHaFramesForged
	oidHaPathRx     = ".1.3.6.1.4.1.99999.2.1.1.6.11.1.3" // cgoaHaPathRxFrames, by path
)

// TestProcessModeSNMPFailover: the mgmt firmware in slots 3 and 4 (and an EPON blade for the
// quorum) on a namespace backplane; from the core-network namespace net-snmp's snmpwalk
// (v2c) and snmpget (v3 authPriv, SHA-256/AES, user added on the console) reach the agent on
// the management address. Then a v3 walk runs while the active mgmt process is killed with
// SIGKILL and its namespace deleted: the walk completes with its retries, in order, and
// engineTime and the counters it read never went backward.
func TestProcessModeSNMPFailover(t *testing.T) {
	if role.Name != "mgmt" {
		t.Skip("runs in the mgmt build (it builds the epon firmware itself)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	sh := newProcShelf(ctx, t, "show snmp", "show ckpt", "show ha")
	bp, procs := sh.bp, sh.procs
	tools := newNetSNMP(t, bp.ns("prober"))

	pr := startProber(t, bp.ns("prober"), "169.254.3.1:7500")
	first := pr.waitAnswer(ctx, t, func(s string) bool { return s != "" })
	var active int
	if _, err := fmt.Sscanf(first, "active %d", &active); err != nil || (active != 3 && active != 4) {
		t.Fatalf("first probe answer %q, want active 3 or active 4", first)
	}
	standby := 7 - active
	// The standby must hold the agent's state before the kill: wait until the active's
	// checkpoint has it as an in-sync replica.
	waitFor(ctx, t, "standby in sync", func() error {
		out, err := procs[active].con.Exec(ctx, "show ckpt json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, fmt.Sprintf(`"slot":%d`, standby)) || !strings.Contains(out, `"in_sync":true`) {
			return fmt.Errorf("show ckpt json = %s", out)
		}
		return nil
	})
	// Retried: while the assignment settles the agent may be restarting for milliseconds.
	waitFor(ctx, t, "snmp user add on the active blade", func() error {
		out, err := procs[active].con.Exec(ctx, "snmp user add ops SHA-256 auth-pass-1 AES priv-pass-1")
		if err != nil || !strings.HasPrefix(out, "user ops added") {
			return fmt.Errorf("snmp user add = %q, %v", out, err)
		}
		return nil
	})
	if out, err := procs[standby].con.Exec(ctx, "snmp user add x SHA-256 auth-pass-1 AES priv-pass-1"); err == nil {
		t.Errorf("snmp user add on the standby = %q, want an error", out)
	}
	// The USM secrets cross the backplane sealed under a key from the shelf key.
	for _, slot := range []int{active, standby} {
		out, err := procs[slot].con.Exec(ctx, "show snmp json")
		var v struct {
			Service struct {
				Sealed  *bool   `json:"checkpoint_sealed"`
				Refused *uint64 `json:"checkpoint_refused"`
			} `json:"service"`
		}
		if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Service.Sealed == nil || v.Service.Refused == nil {
			t.Fatalf("slot %d: show snmp json = %q, %v", slot, out, err)
		}
		if !*v.Service.Sealed || *v.Service.Refused != 0 {
			t.Errorf("slot %d: checkpoint sealed %v, refused %d; want sealed, none refused", slot, *v.Service.Sealed, *v.Service.Refused)
		}
	}

	// v2c walk of the whole tree, with the default community from the core network.
	out, err := tools.cmd(ctx, "snmpwalk", "-v2c", "-c", "public", "-t", "2", "-r", "3", "169.254.3.1", ".1").CombinedOutput()
	if err != nil {
		t.Fatalf("snmpwalk v2c: %v\n%s", err, out)
	}
	walk, order := values(string(out))
	for _, oid := range []string{oidSysDescr, oidHCInOctets1, oidEntPhysDescr, oidHaSelfSlot, oidEngineTime} {
		if _, ok := walk[oid]; !ok {
			t.Errorf("v2c walk lacks %s (%d objects)", oid, len(order))
		}
	}
	if got := num(t, walk, oidHaSelfSlot); got != uint64(active) {
		t.Errorf("cgoaHaSelfSlot = %d, want the active slot %d", got, active)
	}
	// The HA transport's counters are the blade's own: it received frames, each on a base
	// path (read later in the walk: at least as many), and none was forged (one shelf key).
	rx, forged := num(t, walk, oidHaFramesRx), num(t, walk, oidHaForged)
	if paths := num(t, walk, oidHaPathRx+".1") + num(t, walk, oidHaPathRx+".2"); rx == 0 || paths < rx || forged != 0 {
		t.Errorf("cgoaHaFramesReceived %d, by path %d in all, forged %d; want some, by path at least as many, none forged", rx, paths, forged)
	}
	t.Logf("v2c walk: %d objects", len(order))

	v3 := []string{"-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "auth-pass-1", "-x", "AES", "-X", "priv-pass-1", "-t", "1", "-r", "10"}
	get := func() map[string]string {
		t.Helper()
		out, err := tools.cmd(ctx, "snmpget", append(v3, "169.254.3.1", oidEngineTime, oidEngineBoots, oidInPkts, oidInGetNexts, oidNotInWindow, oidHCInOctets1, oidOutGetResps)...).CombinedOutput()
		if err != nil {
			t.Fatalf("snmpget v3: %v\n%s", err, out)
		}
		m, _ := values(string(out))
		return m
	}
	before := get()
	// The responses leave through the blade's own socket after their checkpoint; they are
	// counted there: the v2c walk's at least.
	if n := num(t, before, oidOutGetResps); n < uint64(len(order)) {
		t.Errorf("snmpOutGetResponses = %d after a walk of %d objects", n, len(order))
	}

	// A v3 walk; when it is under way, pull the active blade.
	wc := tools.cmd(ctx, "snmpwalk", append(v3, "169.254.3.1", ".1")...)
	stdout, err := wc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	wc.Stderr = &stderr
	if err := wc.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	for len(lines) < 20 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 20 {
		t.Fatalf("walk ended after %d lines: %s", len(lines), stderr.String())
	}
	killed := time.Now()
	sh.pull(t, active)
	rest, _ := io.ReadAll(stdout)
	if err := wc.Wait(); err != nil {
		t.Fatalf("v3 walk across the failover: %v\n%s", err, stderr.String())
	}
	took := time.Since(killed)
	walk3, order3 := values(strings.Join(lines, "\n") + "\n" + string(rest))
	for i := 1; i < len(order3); i++ {
		if !oidLess(order3[i-1], order3[i]) {
			t.Fatalf("walk not in order at %d: %s then %s", i, order3[i-1], order3[i])
		}
	}
	if len(order3) < len(order)*9/10 {
		t.Errorf("v3 walk across the failover: %d objects, the v2c walk had %d", len(order3), len(order))
	}
	if got := num(t, walk3, oidHaSelfSlot); got != uint64(standby) {
		t.Errorf("cgoaHaSelfSlot read after the kill = %d, want the new active %d", got, standby)
	}
	after := get()
	t.Logf("v3 walk across the failover: %d objects, %v from the kill to its end", len(order3), took.Round(time.Millisecond))

	// engineTime and counters: before <= read in the walk (after the kill) <= after.
	for _, oid := range []string{oidEngineTime, oidInPkts, oidInGetNexts, oidOutGetResps} {
		b, w, a := num(t, before, oid), num(t, walk3, oid), num(t, after, oid)
		if b > w || w > a {
			t.Errorf("%s went backward: before the kill %d, in the walk %d, after %d", oid, b, w, a)
		}
	}
	if b, a := num(t, before, oidHCInOctets1), num(t, after, oidHCInOctets1); b > a {
		t.Errorf("ifHCInOctets.1 went backward: %d then %d", b, a)
	}
	if b, a := num(t, before, oidEngineBoots), num(t, after, oidEngineBoots); b != a {
		t.Errorf("snmpEngineBoots %d then %d: the engine must carry on, not reboot", b, a)
	}
	// A manager in sync with the engine never had to resynchronise its clock.
	if b, a := num(t, before, oidNotInWindow), num(t, after, oidNotInWindow); b != a {
		t.Errorf("usmStatsNotInTimeWindows %d then %d", b, a)
	}
	out2, err := procs[standby].con.Exec(ctx, "show snmp")
	if err != nil || !strings.Contains(out2, "snmp agent active") || !strings.Contains(out2, "ops") {
		t.Errorf("show snmp on the new active = %q, %v", out2, err)
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() error) {
	t.Helper()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DOT3-EPON-MIB columns (RFC 4837 dot3MpcpControlEntry).
const (
	oidMpcpLinkID    = ".1.3.6.1.2.1.155.1.1.1.1.5"
	oidMpcpRemoteMAC = ".1.3.6.1.2.1.155.1.1.1.1.6"
	oidMpcpRegState  = ".1.3.6.1.2.1.155.1.1.1.1.7"
	oidMpcpRTT       = ".1.3.6.1.2.1.155.1.1.1.1.10"
	oidOamOperStatus = ".1.3.6.1.2.1.158.1.1.1.2" // DOT3-OAM-MIB (RFC 4878)
)

// TestProcessModeSNMPEponMIB: the EPON blade in slot 5 has a PON port (pon0, a veth) with
// emulated ONUs on its far end; it publishes its OLT table over the HA transport, and the
// active mgmt blade serves it: net-snmp's snmpwalk of DOT3-EPON-MIB from the core network
// sees every ONU registered, with its MAC, LLID and a round-trip time, under the ifIndex
// slot<<24 | pon<<16 | LLID.
func TestProcessModeSNMPEponMIB(t *testing.T) {
	if role.Name != "mgmt" {
		t.Skip("runs in the mgmt build (it builds the epon firmware itself)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bp := newBackplane(t)
	sh := &procShelf{bp: bp, dir: t.TempDir(), procs: map[int]*fwProc{}}
	mgmtBin := buildFirmware(t)
	eponBin := filepath.Join(sh.dir, "firmware-epon")
	if out, err := exec.Command("go", "build", "-tags", "epon", "-o", eponBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build epon: %v\n%s", err, out)
	}
	for _, n := range []string{"s3", "s4", "s5"} {
		bp.attach(n, "base0", "hub1")
		bp.attach(n, "base1", "hub2")
	}
	bp.attach("prober", "core0", "hub1")
	netns(bp.ns("prober")).ip(t, "addr", "add", "169.254.3.250/24", "dev", "core0")
	// The PON link: pon0 on the EPON blade, its far end (the ONUs' side) in the hubs
	// namespace, where the blade does not see it as a port of its own.
	hubs := netns(bp.ns("hubs"))
	hubs.ip(t, "link", "add", "s5-pon0", "type", "veth", "peer", "name", "pon0", "netns", bp.ns("s5"))
	hubs.ip(t, "link", "set", "s5-pon0", "up")
	macs := []net.HardwareAddr{{0x02, 0xcc, 0, 0, 0, 1}, {0x02, 0xcc, 0, 0, 0, 2}, {0x02, 0xcc, 0, 0, 0, 3}}
	em := startONUs(t, bp.ns("hubs"), "s5-pon0", macs)
	keyb := make([]byte, 32)
	rand.Read(keyb)
	key := hex.EncodeToString(keyb)
	sh.start(ctx, t, 3, mgmtBin, key)
	sh.start(ctx, t, 4, mgmtBin, key)
	sh.start(ctx, t, 5, eponBin, key)
	t.Cleanup(func() {
		if t.Failed() {
			for slot, p := range sh.procs {
				for _, c := range []string{"show snmp", "show onu", "show ha", "show log 40"} {
					out, err := p.con.Exec(context.Background(), c)
					t.Logf("slot %d %s (%v):\n%s", slot, c, err, out)
				}
			}
		}
	})
	tools := newNetSNMP(t, bp.ns("prober"))
	traps := startTrapd(ctx, t, bp.ns("prober"), "169.254.3.250:1162")
	// A notification target on the active mgmt blade (the standby refuses configuration),
	// then the ONUs power on: each registration is a trap from the EPON blade's feed.
	waitFor(ctx, t, "snmp target add on the active mgmt blade", func() error {
		var errs []string
		for _, slot := range []int{3, 4} {
			out, err := sh.procs[slot].con.Exec(ctx, "snmp target add nms 169.254.3.250:1162 v2c traps")
			if err == nil && strings.HasPrefix(out, "target nms added") {
				return nil
			}
			errs = append(errs, fmt.Sprintf("slot %d: %q %v", slot, out, err))
		}
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	})
	if err := em.PowerOnAll(); err != nil {
		t.Fatal(err)
	}

	var walk map[string]string
	waitFor(ctx, t, "every ONU registered in dot3MpcpRegistrationState, its OAM operational", func() error {
		walk = map[string]string{}
		for _, root := range []string{".1.3.6.1.2.1.155", ".1.3.6.1.2.1.158"} {
			out, err := tools.cmd(ctx, "snmpwalk", "-v2c", "-c", "public", "-t", "1", "-r", "2", "169.254.3.1", root).CombinedOutput()
			if err != nil {
				return fmt.Errorf("snmpwalk %s: %v: %s", root, err, out)
			}
			m, _ := values(string(out))
			for k, v := range m {
				walk[k] = v
			}
		}
		reg, oam := 0, 0
		for oid, v := range walk {
			if strings.HasPrefix(oid, oidMpcpRegState+".") && v == "3" {
				reg++
			}
			if strings.HasPrefix(oid, oidOamOperStatus+".") && v == "9" {
				oam++
			}
		}
		if reg != len(macs) || oam != len(macs) {
			return fmt.Errorf("%d registered rows, %d with OAM operational, want %d: %v", reg, oam, len(macs), walk)
		}
		return nil
	})
	seen := map[string]bool{}
	for oid, v := range walk {
		idx, ok := strings.CutPrefix(oid, oidMpcpRegState+".")
		if !ok {
			continue
		}
		ifIndex, err := strconv.ParseUint(idx, 10, 32)
		if err != nil {
			t.Fatalf("row index %q: %v", idx, err)
		}
		slot, pon, llid := ifIndex>>24, (ifIndex>>16)&0xff, ifIndex&0xffff
		if slot != 5 || pon != 0 {
			t.Errorf("row %d: slot %d pon %d, want slot 5 pon 0", ifIndex, slot, pon)
		}
		if llid == 0xffff {
			if v != "1" {
				t.Errorf("PON row %d: registration state %s, want unregistered(1)", ifIndex, v)
			}
			continue
		}
		if got := num(t, walk, oidMpcpLinkID+"."+idx); got != llid {
			t.Errorf("dot3MpcpLinkID.%s = %d, want %d", idx, got, llid)
		}
		if rtt := num(t, walk, oidMpcpRTT+"."+idx); rtt == 0 {
			t.Errorf("dot3MpcpRoundTripTime.%s = 0: not ranged", idx)
		}
		// Hex-STRING: "02 CC 00 00 00 01"
		seen[strings.ToLower(strings.Join(strings.Fields(walk[oidMpcpRemoteMAC+"."+idx]), ":"))] = true
	}
	for _, m := range macs {
		if !seen[m.String()] {
			t.Errorf("ONU %s not in dot3MpcpRemoteMACAddress (%v)", m, seen)
		}
	}
	// cgoaEponOnuRegistered for each ONU, naming its row in dot3MpcpControlTable.
	got := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(got) < len(macs) {
		select {
		case l := <-traps:
			if !strings.Contains(l, ".1.3.6.1.4.1.99999.2.2.0.1") {
				continue
			}
			for _, m := range macs {
				hexMAC := strings.ToUpper(strings.ReplaceAll(m.String(), ":", " "))
				if strings.Contains(l, hexMAC) && strings.Contains(l, oidMpcpLinkID+".838") /* ifIndex 5<<24 + LLID = 83886080 + LLID */ {
					got[m.String()] = true
				}
			}
		case <-deadline:
			t.Fatalf("cgoaEponOnuRegistered traps for %d of %d ONUs: %v", len(got), len(macs), got)
		}
	}
}

// startTrapd runs snmptrapd in namespace ns on addr (no authorization checks, numeric OIDs)
// and returns its output lines.
func startTrapd(ctx context.Context, t *testing.T, ns, addr string) <-chan string {
	t.Helper()
	if _, err := exec.LookPath("snmptrapd"); err != nil {
		t.Skipf("needs snmptrapd (Debian package snmptrapd): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(conf, []byte("disableAuthorization yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "snmptrapd", "-f", "-Lo", "-C", "-c", conf, "-On",
		"-p", filepath.Join(dir, "pid"), "udp:"+addr)
	cmd.Env = append(os.Environ(), "SNMPCONFPATH="+dir, "SNMP_PERSISTENT_DIR="+dir, "MIBS=", "MIBDIRS="+dir, "HOME="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1000)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		started := false
		for sc.Scan() {
			if !started && strings.Contains(sc.Text(), "NET-SNMP version") {
				started = true
				close(ready)
			}
			select {
			case lines <- sc.Text():
			default:
			}
		}
		if !started {
			close(ready)
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("snmptrapd did not start")
	}
	return lines
}

// startONUs runs ONU emulators for macs on the far end of a PON veth in namespace ns; they
// are powered off until the caller powers them on.
func startONUs(t *testing.T, ns, far string, macs []net.HardwareAddr) *onu.Emulator {
	t.Helper()
	var nic *ponlink.NIC
	if err := nsutil.Do(nsutil.Named(ns), func() error {
		var err error
		nic, err = ponlink.OpenNIC(far)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nic.Close() })
	var onus []onu.Emulated
	for i, mac := range macs {
		onus = append(onus, onu.Emulated{Config: onu.Config{MAC: mac, Seed: uint64(i + 1)}, DistanceKm: float64(2 * (i + 1))})
	}
	em, err := onu.NewEmulator(onus, func(b []byte) error {
		var f ponlink.Frame
		if err := f.UnmarshalBinary(b); err != nil {
			return err
		}
		return nic.WriteFrame(&f)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	go func() {
		buf := make([]byte, ponlink.MaxDatagram)
		for {
			f, err := nic.ReadFrame(buf)
			if err != nil {
				return
			}
			if b, err := f.MarshalBinary(); err == nil {
				em.HandleDatagram(b)
			}
		}
	}()
	em.Start()
	return em
}
