package shelf_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/netstack/netns/netnstest"
	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/shelftest"
	"github.com/cgoa/cgoa/qemu/topology"
)

// coreNet is the host-side core network of a shelf test: a network namespace joined to a
// hub's uplink far end by a tap relay, with net-snmp's tools isolated from the host's
// configuration (numeric OIDs, no MIB files, state in a temporary directory).
type coreNet struct {
	ns, dir string
}

func newCoreNet(t *testing.T, sh *shelftest.Shelf, uplink string) *coreNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespace, tap device)")
	}
	for _, tool := range []string{"ip", "snmpwalk", "snmpget", "stdbuf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages iproute2, snmp, coreutils)", tool)
		}
	}
	c := &coreNet{ns: netnstest.New(t, "core"), dir: t.TempDir()}
	ep, ok := sh.Uplink(uplink)
	if !ok {
		t.Fatalf("no far end %s", uplink)
	}
	tap, err := farend.NewTap(ep, "core0", c.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tap.Close() })
	for _, args := range [][]string{
		{"ip", "-n", c.ns, "link", "set", "core0", "up"},
		{"ip", "-n", c.ns, "addr", "add", "169.254.3.250/24", "dev", "core0"},
		// Follow a gratuitous ARP at once, as routers in front of a protected address do.
		{"ip", "netns", "exec", c.ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/neigh/core0/locktime"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	return c
}

func (c *coreNet) cmd(ctx context.Context, tool string, args ...string) *exec.Cmd {
	argv := append([]string{"netns", "exec", c.ns, "stdbuf", "-oL", tool, "-Onqt"}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Env = append(os.Environ(), "SNMPCONFPATH="+c.dir, "SNMP_PERSISTENT_DIR="+c.dir, "MIBS=", "MIBDIRS="+c.dir, "HOME="+c.dir)
	return cmd
}

// snmpValues parses "-Onq" lines into values by OID and the OIDs in order; the
// endOfMibView line that ends a walk is not an object.
func snmpValues(out string) (map[string]string, []string) {
	m := map[string]string{}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		oid, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(oid, ".") && !strings.HasPrefix(v, "No more variables") {
			m[oid] = strings.Trim(v, `"`)
			order = append(order, oid)
		}
	}
	return m, order
}

func snmpNum(t *testing.T, m map[string]string, oid string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(m[oid], 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", oid, m[oid], err)
	}
	return n
}

func oidBefore(a, b string) bool {
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
	snmpEngineTime  = ".1.3.6.1.6.3.10.2.1.3.0"
	snmpEngineBoots = ".1.3.6.1.6.3.10.2.1.2.0"
	snmpInPkts      = ".1.3.6.1.2.1.11.1.0"
	snmpInGetNexts  = ".1.3.6.1.2.1.11.16.0"
	usmNotInWindow  = ".1.3.6.1.6.3.15.1.1.2.0"
	ifHCInOctets1   = ".1.3.6.1.2.1.31.1.1.1.6.1"
	cgoaHaSelfSlot  = ".1.3.6.1.4.1.99999.2.1.1.1.1.0"
	entPhysDescr1   = ".1.3.6.1.2.1.47.1.1.1.1.2.1"
	sysDescr        = ".1.3.6.1.2.1.1.1.0"
)

// TestShelfSNMP boots the default shelf and runs net-snmp's tools from the host's core
// network (a namespace on hub 1's uplink through a tap relay) against the management
// address: a v2c walk of the whole tree; then a v3 authPriv walk during which the active
// mgmt blade is pulled. The walk completes with the tools' retries, in order, and
// engineTime and the counters it read never go backward.
func TestShelfSNMP(t *testing.T) {
	sh := shelftest.Boot(t, topology.Default())
	core := newCoreNet(t, sh, "uplink-s1")
	t.Cleanup(func() {
		if t.Failed() {
			for _, slot := range []int{3, 4} {
				for _, cmd := range []string{"show snmp", "show ckpt", "show log 60"} {
					out, err := sh.TryExec(slot, cmd)
					t.Logf("slot %d %s (%v):\n%s", slot, cmd, err, out)
				}
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The agent answers once the mgmt pair has settled; it tells which slot it runs on.
	var active int
	shelftest.Eventually(t, 60*time.Second, "agent answers from the core network", func() error {
		out, err := core.cmd(ctx, "snmpget", "-v2c", "-c", "public", "-t", "1", "-r", "1", "169.254.3.1", cgoaHaSelfSlot).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		m, _ := snmpValues(string(out))
		n, err := strconv.Atoi(m[cgoaHaSelfSlot])
		if err != nil || (n != 3 && n != 4) {
			return fmt.Errorf("cgoaHaSelfSlot %q", m[cgoaHaSelfSlot])
		}
		active = n
		return nil
	})
	standby := 7 - active
	shelftest.Eventually(t, 60*time.Second, "standby holds the checkpoint", func() error {
		out, err := sh.TryExec(active, "show ckpt json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, fmt.Sprintf(`"slot":%d`, standby)) || !strings.Contains(out, `"in_sync":true`) {
			return fmt.Errorf("show ckpt json = %s", out)
		}
		return nil
	})
	// Retried: while the assignment settles after boot, the agent may be restarting (and
	// refuses configuration for those milliseconds).
	shelftest.Eventually(t, 30*time.Second, "snmp user add on the active blade", func() error {
		out, err := sh.TryExec(active, "snmp user add ops SHA-256 auth-pass-1 AES priv-pass-1")
		if err != nil || !strings.HasPrefix(out, "user ops added") {
			return fmt.Errorf("snmp user add = %q, %v", out, err)
		}
		return nil
	})

	out, err := core.cmd(ctx, "snmpwalk", "-v2c", "-c", "public", "-t", "3", "-r", "3", "169.254.3.1", ".1").CombinedOutput()
	if err != nil {
		t.Fatalf("snmpwalk v2c: %v\n%s", err, out)
	}
	walk, order := snmpValues(string(out))
	for _, oid := range []string{sysDescr, ifHCInOctets1, entPhysDescr1, cgoaHaSelfSlot, snmpEngineTime} {
		if _, ok := walk[oid]; !ok {
			t.Errorf("v2c walk lacks %s (%d objects)", oid, len(order))
		}
	}
	t.Logf("v2c walk from the core network: %d objects", len(order))

	v3 := []string{"-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "auth-pass-1", "-x", "AES", "-X", "priv-pass-1", "-t", "2", "-r", "10"}
	get := func() map[string]string {
		t.Helper()
		out, err := core.cmd(ctx, "snmpget", append(v3, "169.254.3.1", snmpEngineTime, snmpEngineBoots, snmpInPkts, snmpInGetNexts, usmNotInWindow, ifHCInOctets1)...).CombinedOutput()
		if err != nil {
			t.Fatalf("snmpget v3: %v\n%s", err, out)
		}
		m, _ := snmpValues(string(out))
		return m
	}
	before := get()

	wc := core.cmd(ctx, "snmpwalk", append(v3, "169.254.3.1", ".1")...)
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
	sh.Kill(t, active)
	rest, _ := io.ReadAll(stdout)
	if err := wc.Wait(); err != nil {
		t.Fatalf("v3 walk across the failover: %v\n%s", err, stderr.String())
	}
	took := time.Since(killed)
	walk3, order3 := snmpValues(strings.Join(lines, "\n") + "\n" + string(rest))
	for i := 1; i < len(order3); i++ {
		if !oidBefore(order3[i-1], order3[i]) {
			t.Fatalf("walk not in order at %d: %s then %s", i, order3[i-1], order3[i])
		}
	}
	if len(order3) < len(order)*9/10 {
		t.Errorf("v3 walk across the failover: %d objects, the v2c walk had %d", len(order3), len(order))
	}
	if got := snmpNum(t, walk3, cgoaHaSelfSlot); got != uint64(standby) {
		t.Errorf("cgoaHaSelfSlot read after the kill = %d, want the new active %d", got, standby)
	}
	after := get()
	t.Logf("v3 walk across the failover: %d objects, %v from the kill to its end", len(order3), took.Round(time.Millisecond))
	for _, oid := range []string{snmpEngineTime, snmpInPkts, snmpInGetNexts} {
		b, w, a := snmpNum(t, before, oid), snmpNum(t, walk3, oid), snmpNum(t, after, oid)
		if b > w || w > a {
			t.Errorf("%s went backward: before the kill %d, in the walk %d, after %d", oid, b, w, a)
		}
	}
	if b, a := snmpNum(t, before, ifHCInOctets1), snmpNum(t, after, ifHCInOctets1); b > a {
		t.Errorf("ifHCInOctets.1 went backward: %d then %d", b, a)
	}
	if b, a := snmpNum(t, before, snmpEngineBoots), snmpNum(t, after, snmpEngineBoots); b != a {
		t.Errorf("snmpEngineBoots %d then %d: the engine must carry on", b, a)
	}
	if b, a := snmpNum(t, before, usmNotInWindow), snmpNum(t, after, usmNotInWindow); b != a {
		t.Errorf("usmStatsNotInTimeWindows %d then %d", b, a)
	}
}
