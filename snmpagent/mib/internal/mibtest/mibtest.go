// Package mibtest is the test harness the MIB modules share: an agent on
// 127.0.0.1, net-snmp's command-line tools run isolated from the host's
// configuration, a parser for their numeric output, and snmptrapd.
package mibtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/snmpagent"
)

// Communities of the agent Agent starts.
const (
	Public  = "public"
	Private = "private"
)

// Agent starts an agent on 127.0.0.1 with a read-only community "public"
// and a read-write community "private"; register modules in its tree
// before or after (the tree is live). It is closed when the test ends.
func Agent(t testing.TB, clk snmpagent.Clock) *snmpagent.Agent {
	t.Helper()
	a, err := snmpagent.New(snmpagent.Config{
		EngineID: []byte{0x80, 0, 0x1f, 0x88, 0x04, 'm', 'i', 'b', 's'},
		Clock:    clk,
		System:   snmpagent.System{Descr: "cgoa mib test agent", Name: "mgmt-test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddCommunity(snmpagent.Community{Name: Public}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddCommunity(snmpagent.Community{Name: Private, Write: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); a.Close() })
	if err := a.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return a
}

// Target is the agent's address as net-snmp's tools want it.
func Target(a *snmpagent.Agent) string { return "udp:" + a.Addr().String() }

// MIBDir is the repository's snmpagent/mibs directory.
func MIBDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("mibtest: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "mibs")
}

// ToolSplit is Tool with standard output and error apart (net-snmp
// prints MIB loading warnings about the host's own MIB files on stderr).
func ToolSplit(t testing.TB, tool string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (Debian package snmp): %v", tool, err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if tool != "snmptranslate" {
		args = append([]string{"-r", "1", "-t", "1"}, args...)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env(dir)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var keep []string
	for _, l := range strings.SplitAfter(e.String(), "\n") {
		if !strings.HasPrefix(l, "Created directory:") {
			keep = append(keep, l)
		}
	}
	return o.String(), strings.Join(keep, ""), err
}

// Tool runs one net-snmp tool with small retries, isolated from the
// host's configuration (no default MIBs, no snmp.conf, no persistent
// state). It skips the test when the tool is not installed.
func Tool(t testing.TB, tool string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (Debian package snmp): %v", tool, err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-r", "1", "-t", "1"}, args...)...)
	if tool == "snmptranslate" {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Env = env(dir)
	out, err := cmd.CombinedOutput()
	var keep []string
	for _, l := range strings.SplitAfter(string(out), "\n") {
		if !strings.HasPrefix(l, "Created directory:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, ""), err
}

func env(dir string) []string {
	return []string{"MIBS=", "MIBDIRS=" + dir, "SNMPCONFPATH=" + dir, "SNMP_PERSISTENT_DIR=" + dir, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
}

// Varbind is one line of numeric (-On) tool output.
type Varbind struct {
	OID   snmpagent.OID
	Type  string // "INTEGER", "Counter64", "STRING", ...
	Value string // as printed, quotes removed from strings
}

// Parse reads "-On" output lines ".1.3... = TYPE: value".
func Parse(t testing.TB, out string) []Varbind {
	t.Helper()
	var vbs []Varbind
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" || strings.Contains(l, "No more variables left in this MIB View") {
			continue // endOfMibView: the walk ran off the end of the tree
		}
		name, rest, ok := strings.Cut(l, " = ")
		if !ok {
			t.Fatalf("unparsable tool output line %q", l)
		}
		oid, err := snmpagent.ParseOID(name)
		if err != nil {
			t.Fatalf("tool output line %q: %v", l, err)
		}
		vb := Varbind{OID: oid}
		if rest == `""` {
			vb.Type, vb.Value = "STRING", ""
		} else if typ, val, ok := strings.Cut(rest, ": "); ok {
			vb.Type, vb.Value = typ, val
		} else {
			vb.Value = strings.TrimSuffix(rest, ":")
			vb.Type = ""
		}
		vb.Value = strings.TrimSpace(vb.Value)
		if vb.Type == "STRING" {
			vb.Value = strings.Trim(vb.Value, `"`)
		}
		vbs = append(vbs, vb)
	}
	return vbs
}

// Walk runs snmpwalk (v2c, numeric OIDs and enums) under root and checks
// that the answer is in strictly increasing lexicographic order.
func Walk(t testing.TB, a *snmpagent.Agent, root string) []Varbind {
	t.Helper()
	out, err := Tool(t, "snmpwalk", "-v2c", "-c", Public, "-On", "-Oe", "-Cc", Target(a), root)
	if err != nil {
		t.Fatalf("snmpwalk %s = %q, %v", root, out, err)
	}
	vbs := Parse(t, out)
	for i := 1; i < len(vbs); i++ {
		if vbs[i-1].OID.Compare(vbs[i].OID) >= 0 {
			t.Fatalf("snmpwalk %s: %v after %v: not increasing", root, vbs[i].OID, vbs[i-1].OID)
		}
	}
	return vbs
}

// Find returns the varbind of oid (dotted) in vbs.
func Find(vbs []Varbind, oid string) (Varbind, bool) {
	o, err := snmpagent.ParseOID(oid)
	if err != nil {
		return Varbind{}, false
	}
	for _, vb := range vbs {
		if vb.OID.Compare(o) == 0 {
			return vb, true
		}
	}
	return Varbind{}, false
}

// Want checks that vbs holds oid with the given type and value.
func Want(t testing.TB, vbs []Varbind, oid, typ, value string) {
	t.Helper()
	vb, ok := Find(vbs, oid)
	switch {
	case !ok:
		t.Errorf("%s missing from walk", oid)
	case vb.Type != typ || vb.Value != value:
		t.Errorf("%s = %s: %s, want %s: %s", oid, vb.Type, vb.Value, typ, value)
	}
}

// Trapd runs snmptrapd on a free 127.0.0.1 port with conf and returns the
// port and its output lines. It is killed when the test ends.
func Trapd(t testing.TB, conf string, mibArgs ...string) (netip.AddrPort, <-chan string) {
	t.Helper()
	path, err := exec.LookPath("snmptrapd")
	if err != nil {
		t.Skipf("snmptrapd not installed (Debian package snmptrapd): %v", err)
	}
	dir := t.TempDir()
	confPath := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	args := append([]string{"-f", "-Lo", "-C", "-c", confPath, "-p", filepath.Join(dir, "pid")}, mibArgs...)
	if len(mibArgs) == 0 {
		args = append(args, "-On")
	}
	cmd := exec.Command(path, append(args, fmt.Sprintf("udp:127.0.0.1:%d", port))...)
	cmd.Env = env(dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1000)
	var once sync.Once
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, "NET-SNMP version") {
				once.Do(func() { close(ready) })
			}
			select {
			case lines <- l:
			default:
			}
		}
		once.Do(func() { close(ready) })
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("snmptrapd did not start")
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), lines
}

// AwaitLine waits up to 10 s for an output line containing all of want
// and returns it.
func AwaitLine(t testing.TB, lines <-chan string, want ...string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l, w)
			}
			if ok {
				return l
			}
		case <-deadline:
			t.Fatalf("snmptrapd printed no line with %q", want)
			return ""
		}
	}
}

// Clock is real time plus an adjustable offset (net-snmp's tools use
// real time, so the agent's clock must stay near it).
type Clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}
