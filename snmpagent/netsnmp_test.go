package snmpagent

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// netSNMP runs one net-snmp tool isolated from the host's configuration
// (no MIBs, no snmp.conf, no persistent state) with small retries.
func netSNMP(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (Debian package snmp): %v", tool, err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-On", "-r", "1", "-t", "1"}, args...)...)
	cmd.Env = netSNMPEnv(dir)
	out, err := cmd.CombinedOutput()
	// An empty persistent directory makes the tools say so; drop that.
	var keep []string
	for _, l := range strings.SplitAfter(string(out), "\n") {
		if !strings.HasPrefix(l, "Created directory:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, ""), err
}

func netSNMPEnv(dir string) []string {
	return []string{"MIBS=", "MIBDIRS=" + dir, "SNMPCONFPATH=" + dir, "SNMP_PERSISTENT_DIR=" + dir, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
}

func v3Args(user, auth, priv string) []string {
	return []string{"-v3", "-l", "authPriv", "-u", user, "-a", "SHA-256", "-A", auth, "-x", "AES", "-X", priv}
}

func agentArg(a *Agent) string { return "udp:" + a.Addr().String() }

func TestNetSNMPv2c(t *testing.T) {
	a, _ := startAgent(t)
	out, err := netSNMP(t, "snmpget", "-v2c", "-c", "public", agentArg(a), "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0")
	if err != nil || !strings.Contains(out, `STRING: "cgoa test agent"`) || !strings.Contains(out, `STRING: "mgmt1"`) {
		t.Fatalf("snmpget v2c = %q, %v; want sysDescr and sysName", out, err)
	}
	out, err = netSNMP(t, "snmpgetnext", "-v2c", "-c", "public", agentArg(a), "1.3.6.1.2.1.1.1.0")
	if err != nil || !strings.HasPrefix(out, ".1.3.6.1.2.1.1.2.0 = OID: ") {
		t.Fatalf("snmpgetnext sysDescr.0 = %q, %v; want sysObjectID.0", out, err)
	}
	walk, err := netSNMP(t, "snmpwalk", "-v2c", "-c", "public", "-Cc", agentArg(a), "1.3.6.1")
	if err != nil {
		t.Fatalf("snmpwalk = %q, %v", walk, err)
	}
	bulk, err := netSNMP(t, "snmpbulkwalk", "-v2c", "-c", "public", "-Cr7", agentArg(a), "1.3.6.1")
	if err != nil {
		t.Fatalf("snmpbulkwalk = %q, %v", bulk, err)
	}
	// Both walks return the same names in the same (increasing) order;
	// counters may differ in value between the two.
	names := func(s string) []string {
		var r []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			r = append(r, strings.SplitN(l, " ", 2)[0])
		}
		return r
	}
	wn, bn := names(walk), names(bulk)
	if strings.Join(wn, ",") != strings.Join(bn, ",") {
		t.Errorf("snmpwalk names %v\n!= snmpbulkwalk names %v", wn, bn)
	}
	if len(wn) < 40 {
		t.Errorf("snmpwalk returned %d varbinds, want >= 40:\n%s", len(wn), walk)
	}
	for _, want := range []string{".1.3.6.1.2.1.1.9.1.3.1 = STRING:", ".1.3.6.1.2.1.11.1.0 = Counter32:", ".1.3.6.1.6.3.15.1.1.4.0 = Counter32:", ".1.3.6.1.6.3.10.2.1.1.0 = Hex-STRING:"} {
		if !strings.Contains(walk, want) {
			t.Errorf("snmpwalk output lacks %q", want)
		}
	}

	// Read-only community: SET refused with noAccess, counted.
	out, _ = netSNMP(t, "snmpset", "-v2c", "-c", "public", agentArg(a), "1.3.6.1.2.1.1.6.0", "s", "x")
	if !strings.Contains(out, "noAccess") {
		t.Errorf("snmpset with ro community = %q, want noAccess", out)
	}
	if c := a.Counters(); c.InBadCommunityUses != 1 {
		t.Errorf("snmpInBadCommunityUses = %d, want 1", c.InBadCommunityUses)
	}
	// Read-write: all-or-nothing SET. The second varbind is read-only, so
	// nothing may change and error-index must point at it.
	out, _ = netSNMP(t, "snmpset", "-v2c", "-c", "private", agentArg(a), "1.3.6.1.2.1.1.6.0", "s", "rack 9", "1.3.6.1.2.1.1.1.0", "s", "x")
	if !strings.Contains(out, "notWritable") || !strings.Contains(out, "Failed object: .1.3.6.1.2.1.1.1.0") {
		t.Errorf("snmpset with a read-only varbind = %q, want notWritable on sysDescr", out)
	}
	out, _ = netSNMP(t, "snmpset", "-v2c", "-c", "private", agentArg(a), "1.3.6.1.2.1.1.6.0", "s", "rack 9", "1.3.6.1.2.1.1.4.0", "i", "5")
	if !strings.Contains(out, "wrongType") || !strings.Contains(out, "Failed object: .1.3.6.1.2.1.1.4.0") {
		t.Errorf("snmpset with a wrong type = %q, want wrongType on sysContact", out)
	}
	out, _ = netSNMP(t, "snmpget", "-v2c", "-c", "public", agentArg(a), "1.3.6.1.2.1.1.6.0")
	if !strings.Contains(out, `"lab"`) {
		t.Errorf("sysLocation after failed SETs = %q, want unchanged \"lab\"", out)
	}
	out, err = netSNMP(t, "snmpset", "-v2c", "-c", "private", agentArg(a), "1.3.6.1.2.1.1.6.0", "s", "rack 9", "1.3.6.1.2.1.1.4.0", "s", "ops@shelf")
	if err != nil {
		t.Fatalf("snmpset = %q, %v", out, err)
	}
	out, _ = netSNMP(t, "snmpget", "-v2c", "-c", "public", agentArg(a), "1.3.6.1.2.1.1.6.0", "1.3.6.1.2.1.1.4.0")
	if !strings.Contains(out, `"rack 9"`) || !strings.Contains(out, `"ops@shelf"`) {
		t.Errorf("after SET = %q, want both new values", out)
	}
	// v1 maps errors: a missing instance is noSuchName.
	out, _ = netSNMP(t, "snmpget", "-v1", "-c", "public", agentArg(a), "1.3.6.1.2.1.1.1.1")
	if !strings.Contains(out, "noSuchName") {
		t.Errorf("v1 get of missing instance = %q, want noSuchName", out)
	}
	// A view-restricted community sees only the system group.
	out, _ = netSNMP(t, "snmpget", "-v2c", "-c", "sysonly", agentArg(a), "1.3.6.1.2.1.11.1.0")
	if !strings.Contains(out, "No Such Object") {
		t.Errorf("get outside view = %q, want noSuchObject", out)
	}
}

func TestNetSNMPRefusals(t *testing.T) {
	a, clk := startAgent(t)
	before := a.Counters()

	// Wrong community: no response (RFC 3416/3584), counted.
	out, err := netSNMP(t, "snmpget", "-v2c", "-c", "wrong", agentArg(a), "1.3.6.1.2.1.1.1.0")
	if err == nil || !strings.Contains(out, "Timeout") {
		t.Errorf("snmpget with wrong community = %q, %v; want timeout", out, err)
	}
	// Community restricted to 192.0.2.0/24 used from 127.0.0.1.
	if out, err := netSNMP(t, "snmpget", "-v2c", "-c", "remote", agentArg(a), "1.3.6.1.2.1.1.1.0"); err == nil {
		t.Errorf("snmpget with source-restricted community = %q, want timeout", out)
	}
	// Unknown user: usmStatsUnknownUserNames report.
	out, err = netSNMP(t, "snmpget", append(v3Args("nobody", testAuthPass, testPrivPass), agentArg(a), "1.3.6.1.2.1.1.1.0")...)
	if err == nil || !strings.Contains(out, "Unknown user name") {
		t.Errorf("snmpget unknown user = %q, %v; want Unknown user name", out, err)
	}
	// Wrong passphrase: usmStatsWrongDigests report.
	out, err = netSNMP(t, "snmpget", append(v3Args(testUser, "wrongpass123", testPrivPass), agentArg(a), "1.3.6.1.2.1.1.1.0")...)
	if err == nil || !strings.Contains(out, "Authentication failure") {
		t.Errorf("snmpget wrong digest = %q, %v; want Authentication failure", out, err)
	}
	// Unsupported level: a user without privacy asked for authPriv.
	out, err = netSNMP(t, "snmpget", "-v3", "-l", "authPriv", "-u", "sha1user", "-a", "SHA", "-A", testAuthPass, "-x", "AES", "-X", testPrivPass, agentArg(a), "1.3.6.1.2.1.1.1.0")
	if err == nil || !strings.Contains(out, "Unsupported security level") {
		t.Errorf("snmpget unsupported level = %q, %v; want Unsupported security level", out, err)
	}
	// Malformed packets are dropped and counted.
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, junk := range [][]byte{{0x30, 0x03, 0x02, 0x01}, {0xff, 0xff}, {0x30, 0x84, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := conn.Write(junk); err != nil {
			t.Fatal(err)
		}
	}
	// A replay outside the time window: a genuine authPriv request, sent
	// again after the agent's clock moved 200 s on.
	g := goClient(t, a, gosnmp.Version3, "")
	if _, err := g.Get([]string{".1.3.6.1.2.1.1.3.0"}); err != nil {
		t.Fatalf("v3 get = %v", err)
	}
	req, err := g.SnmpEncodePacket(gosnmp.GetRequest, []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.Null}}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	resp := exchange(t, conn, req)
	if got := decodeV3(t, g, resp); got.PDUType != gosnmp.GetResponse {
		t.Fatalf("fresh request answered with %v, want GetResponse", got.PDUType)
	}
	clk.Advance(200 * time.Second)
	rep := decodeV3(t, g, exchange(t, conn, req))
	if rep.PDUType != gosnmp.Report || len(rep.Variables) != 1 || rep.Variables[0].Name != ".1.3.6.1.6.3.15.1.1.2.0" {
		t.Fatalf("replay answered with %v %v, want Report usmStatsNotInTimeWindows", rep.PDUType, rep.Variables)
	}
	if rep.MsgFlags&gosnmp.AuthNoPriv == 0 {
		t.Errorf("notInTimeWindow report flags = %v, want authenticated", rep.MsgFlags)
	}

	// The agent keeps serving; net-snmp resynchronizes its time.
	out, err = netSNMP(t, "snmpget", append(v3Args(testUser, testAuthPass, testPrivPass), agentArg(a), "1.3.6.1.2.1.1.5.0")...)
	if err != nil || !strings.Contains(out, `"mgmt1"`) {
		t.Fatalf("snmpget v3 after refusals = %q, %v", out, err)
	}
	c := a.Counters()
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"snmpInBadCommunityNames", c.InBadCommunityNames - before.InBadCommunityNames, 4}, // 2 tools x (1 + 1 retry)
		{"usmStatsUnknownUserNames", c.UsmUnknownUserNames - before.UsmUnknownUserNames, 1},
		{"usmStatsWrongDigests", c.UsmWrongDigests - before.UsmWrongDigests, 1},
		{"usmStatsUnsupportedSecLevels", c.UsmUnsupportedSecLevels - before.UsmUnsupportedSecLevels, 1},
		{"snmpInASNParseErrs", c.InASNParseErrs - before.InASNParseErrs, 3},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s rose by %d, want %d", ck.name, ck.got, ck.want)
		}
	}
	if c.UsmNotInTimeWindows-before.UsmNotInTimeWindows < 1 {
		t.Errorf("usmStatsNotInTimeWindows did not rise")
	}
	// And the counters are visible over SNMP.
	out, _ = netSNMP(t, "snmpget", "-v2c", "-c", "public", agentArg(a), "1.3.6.1.6.3.15.1.1.5.0", "1.3.6.1.2.1.11.6.0")
	if !strings.Contains(out, ".1.3.6.1.6.3.15.1.1.5.0 = Counter32: 1") || !strings.Contains(out, ".1.3.6.1.2.1.11.6.0 = Counter32: 3") {
		t.Errorf("usmStatsWrongDigests/snmpInASNParseErrs over SNMP = %q", out)
	}
}

func exchange(t *testing.T, conn *net.UDPConn, req []byte) []byte {
	t.Helper()
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return buf[:n]
}

func decodeV3(t *testing.T, g *gosnmp.GoSNMP, msg []byte) *gosnmp.SnmpPacket {
	t.Helper()
	d := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
		MsgFlags: g.MsgFlags, SecurityParameters: g.SecurityParameters.Copy()}
	pkt, err := d.SnmpDecodePacket(msg)
	if err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return pkt
}

func TestNetSNMPv3(t *testing.T) {
	a, _ := startAgent(t)
	args := append(v3Args(testUser, testAuthPass, testPrivPass), agentArg(a))
	out, err := netSNMP(t, "snmpget", append(args, "1.3.6.1.2.1.1.1.0")...)
	if err != nil || !strings.Contains(out, `"cgoa test agent"`) {
		t.Fatalf("snmpget v3 = %q, %v", out, err)
	}
	out, err = netSNMP(t, "snmpbulkwalk", append(args, "1.3.6.1.2.1.1")...)
	if err != nil || strings.Count(out, "\n") != 8+15 {
		t.Fatalf("snmpbulkwalk v3 system = %q, %v; want 23 lines", out, err)
	}
	out, err = netSNMP(t, "snmpset", append(args, "1.3.6.1.2.1.1.5.0", "s", "mgmt-a")...)
	if err != nil {
		t.Fatalf("snmpset v3 = %q, %v", out, err)
	}
	out, err = netSNMP(t, "snmpwalk", append(args, "1.3.6.1.2.1.1.5")...)
	if err != nil || !strings.Contains(out, `"mgmt-a"`) {
		t.Fatalf("snmpwalk v3 after set = %q, %v", out, err)
	}
	// The SHA-1 authNoPriv user sees only the system group.
	out, err = netSNMP(t, "snmpgetnext", "-v3", "-l", "authNoPriv", "-u", "sha1user", "-a", "SHA", "-A", testAuthPass, agentArg(a), "1.3.6.1.2.1.1.9.1.4.5")
	if err != nil || !strings.Contains(out, "No more variables left in this MIB View") {
		t.Fatalf("snmpgetnext at the end of the view = %q, %v", out, err)
	}
	out, _ = netSNMP(t, "snmpset", "-v3", "-l", "authNoPriv", "-u", "sha1user", "-a", "SHA", "-A", testAuthPass, agentArg(a), "1.3.6.1.2.1.1.5.0", "s", "x")
	if !strings.Contains(out, "noAccess") {
		t.Errorf("snmpset by a read-only v3 user = %q, want noAccess", out)
	}
}

// snmptrapd runs net-snmp's trap receiver on a free 127.0.0.1 port with
// conf, and returns its port and a channel of its output lines.
func snmptrapd(t *testing.T, conf string) (int, <-chan string) {
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
	cmd := exec.Command(path, "-f", "-Lo", "-On", "-C", "-c", confPath, "-p", filepath.Join(dir, "pid"), fmt.Sprintf("udp:127.0.0.1:%d", port))
	cmd.Env = netSNMPEnv(dir)
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
	return port, lines
}

// awaitLine waits for an output line containing all of want.
func awaitLine(t *testing.T, lines <-chan string, want ...string) {
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
				return
			}
		case <-deadline:
			t.Fatalf("snmptrapd printed no line with %q", want)
		}
	}
}

func TestNotificationsToSnmptrapd(t *testing.T) {
	a, _ := startAgent(t)
	engine := hex.EncodeToString(a.EngineID())
	conf := fmt.Sprintf("authCommunity log public\ncreateUser -e 0x%s %s SHA-256 %s AES %s\nauthUser log %s authPriv\n",
		engine, testUser, testAuthPass, testPrivPass, testUser)
	port, lines := snmptrapd(t, conf)
	addr := netipAddrPort(t, fmt.Sprintf("127.0.0.1:%d", port))
	for _, tg := range []Target{
		{Name: "trap", Addr: addr, Version: gosnmp.Version2c, Community: "public"},
		{Name: "inform", Addr: addr, Version: gosnmp.Version2c, Community: "public", Inform: true, Timeout: 500 * time.Millisecond},
		{Name: "v3trap", Addr: addr, Version: gosnmp.Version3, User: testUser, Level: AuthPriv},
	} {
		if err := a.AddTarget(tg); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	linkDown := MustOID("1.3.6.1.6.3.1.1.5.3")
	if err := a.Notify(ctx, linkDown, Varbind{MustOID("1.3.6.1.2.1.2.2.1.1.7"), Integer(7)}); err != nil {
		t.Fatalf("Notify = %v", err)
	}
	// Three notifications: v2c trap, v2c inform (acknowledged, or Notify
	// would have failed) and v3 authPriv trap.
	for i := 0; i < 3; i++ {
		awaitLine(t, lines, ".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.6.3.1.1.5.3", ".1.3.6.1.2.1.2.2.1.1.7 = INTEGER: 7")
	}
	c := a.Counters()
	if c.OutTraps != 2 || c.OutInforms < 1 || c.InformTimeouts != 0 {
		t.Errorf("OutTraps/OutInforms/InformTimeouts = %d/%d/%d, want 2/>=1/0", c.OutTraps, c.OutInforms, c.InformTimeouts)
	}

	// snmpEnableAuthenTraps is off by default; once enabled by SET, a
	// wrong community raises authenticationFailure at every target.
	if out, err := netSNMP(t, "snmpset", "-v2c", "-c", "private", agentArg(a), "1.3.6.1.2.1.11.30.0", "i", "1"); err != nil {
		t.Fatalf("enable auth traps = %q, %v", out, err)
	}
	if out, err := netSNMP(t, "snmpget", "-r", "0", "-v2c", "-c", "wrong", agentArg(a), "1.3.6.1.2.1.1.1.0"); err == nil {
		t.Fatalf("get with wrong community answered: %q", out)
	}
	for i := 0; i < 3; i++ {
		awaitLine(t, lines, ".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.6.3.1.1.5.5")
	}
}

// counterValues reads Counter32 scalars with net-snmp's snmpget (values
// only, in the order asked).
func counterValues(t *testing.T, target string, oids ...OID) []uint64 {
	t.Helper()
	args := []string{"-Oqv", "-v2c", "-c", "public", target}
	for _, o := range oids {
		args = append(args, o.String())
	}
	out, err := netSNMP(t, "snmpget", args...)
	if err != nil {
		t.Fatalf("snmpget %v = %q, %v", oids, out, err)
	}
	lines := strings.Fields(strings.TrimSpace(out))
	if len(lines) != len(oids) {
		t.Fatalf("snmpget %v = %q, want %d values", oids, out, len(oids))
	}
	vals := make([]uint64, len(lines))
	for i, l := range lines {
		if _, err := fmt.Sscan(l, &vals[i]); err != nil {
			t.Fatalf("snmpget %v: value %q: %v", oids, l, err)
		}
	}
	return vals
}

// TestNetSNMPOutCounters: responses are counted in snmpOutPkts and
// snmpOutGetResponses, error responses in their snmpOut<status> counter,
// as net-snmp's snmpget reads them.
func TestNetSNMPOutCounters(t *testing.T) {
	a, _ := startAgent(t)
	for i := 0; i < 3; i++ {
		if out, err := netSNMP(t, "snmpget", "-v2c", "-c", "public", agentArg(a), "1.3.6.1.2.1.1.1.0"); err != nil {
			t.Fatalf("snmpget sysDescr = %q, %v", out, err)
		}
	}
	// SNMPv1 answers an unknown object with noSuchName (-Cf: do not retry without it).
	out, _ := netSNMP(t, "snmpget", "-v1", "-Cf", "-c", "public", agentArg(a), "1.3.6.1.2.1.1.99.0")
	if !strings.Contains(out, "noSuchName") {
		t.Fatalf("snmpget v1 of an unknown object = %q, want noSuchName", out)
	}
	v := counterValues(t, agentArg(a), OIDSNMP.Append(1, 0), OIDSNMP.Append(2, 0), OIDSNMP.Append(28, 0),
		OIDSNMP.Append(21, 0), OIDSNMP.Append(24, 0))
	in, outPkts, getResp, noSuch, genErr := v[0], v[1], v[2], v[3], v[4]
	// The request reading the counters is counted in, its own response not yet out.
	if in < 5 || getResp != in-1 || outPkts != getResp || noSuch != 1 || genErr != 0 {
		t.Errorf("snmpInPkts %d snmpOutPkts %d snmpOutGetResponses %d snmpOutNoSuchNames %d snmpOutGenErrs %d; "+
			"want in >= 5, out = responses = in-1, noSuchNames 1, genErrs 0", in, outPkts, getResp, noSuch, genErr)
	}
	// Once written, the last response counts too.
	deadline := time.Now().Add(5 * time.Second)
	for c := a.Counters(); c.OutPkts != c.InPkts || c.OutGetResponses != c.InPkts; c = a.Counters() {
		if time.Now().After(deadline) {
			t.Fatalf("counters %+v: want every request's response counted out", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
