package mgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/cgoa/cgoa/blades/console"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/hal"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/entitymib"
	"github.com/cgoa/cgoa/snmpagent/mib/ifmib"
)

// memCkpt is the checkpoint of two blades sharing one memory: what one saves the other loads.
type memCkpt struct {
	mu    sync.Mutex
	data  []byte
	at    time.Time
	saves int
}

func (m *memCkpt) Save(_ context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data, m.at = bytes.Clone(data), time.Now()
	m.saves++
	return nil
}

func (m *memCkpt) Load() ([]byte, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.data), m.at, nil
}

// saved decodes the last saved agent state.
func (m *memCkpt) saved(t *testing.T) snmpagent.State {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var st snmpState
	if err := json.Unmarshal(m.data, &st); err != nil {
		t.Fatalf("saved state: %v", err)
	}
	return st.Agent
}

type fakePorts struct{ rx uint64 }

func (f *fakePorts) Ports() ([]hal.Port, error) {
	f.rx += 1000 // every sample: traffic went by
	return []hal.Port{{Name: "base0", OperUp: true, Carrier: true, RxBytes: f.rx, RxPackets: f.rx / 100}}, nil
}

type testBlade struct {
	s      *SNMP
	con    *console.Console
	cancel context.CancelFunc
	done   chan struct{}
}

func startBlade(t *testing.T, ck Checkpoint, addr netip.AddrPort, slot int) *testBlade {
	t.Helper()
	s := NewSNMP(SNMPConfig{
		Addr:  addr,
		Ckpt:  ck,
		Ports: &fakePorts{},
		Inventory: entitymib.InventoryFunc(func() (entitymib.Shelf, error) {
			return entitymib.Shelf{Number: 1, Slots: []entitymib.Slot{{Number: slot, Present: true, Role: "mgmt"}}}, nil
		}),
		Defaults: DefaultConfig,
		Logf:     t.Logf,
	})
	s.ifs = ifmib.New(&fakePorts{}, ifmib.Options{Speed: func(string) uint64 { return 1e9 }})
	con := console.New()
	s.RegisterCommands(con)
	ctx, cancel := context.WithCancel(context.Background())
	b := &testBlade{s: s, con: con, cancel: cancel, done: make(chan struct{})}
	go func() { s.Run(ctx); close(b.done) }()
	t.Cleanup(b.kill)
	return b
}

// kill ends the blade's agent as a pulled blade would: nothing more is saved or answered.
func (b *testBlade) kill() {
	b.cancel()
	<-b.done
}

func (b *testBlade) run(t *testing.T, line string) string {
	t.Helper()
	var w strings.Builder
	b.con.Run(&w, line)
	return w.String()
}

func waitUp(t *testing.T, b *testBlade) {
	t.Helper()
	select {
	case <-b.s.Started():
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not start")
	}
}

func freeUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func v3Client(addr netip.AddrPort) *gosnmp.GoSNMP {
	return &gosnmp.GoSNMP{Target: addr.Addr().String(), Port: addr.Port(), Version: gosnmp.Version3,
		Timeout: 300 * time.Millisecond, Retries: 20, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthPriv,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "ops", AuthenticationProtocol: gosnmp.SHA256,
			AuthenticationPassphrase: "auth-secret-1", PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: "priv-secret-1"}}
}

var (
	oidEngineTime = snmpagent.OIDSnmpEngine.Append(3, 0)
	oidInPkts     = snmpagent.OIDSNMP.Append(1, 0)
	oidInGets     = snmpagent.OIDSNMP.Append(15, 0) // snmpInGetRequests
	oidHCInOctets = ifmib.OIDIfXEntry.Append(6, 1)
)

type reading struct{ engineTime, inPkts, inGets, hcIn uint64 }

func read(t *testing.T, c *gosnmp.GoSNMP) reading {
	t.Helper()
	pkt, err := c.Get([]string{oidEngineTime.String(), oidInPkts.String(), oidInGets.String(), oidHCInOctets.String()})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if pkt.Error != gosnmp.NoError || len(pkt.Variables) != 4 {
		t.Fatalf("get: status %v, %d varbinds", pkt.Error, len(pkt.Variables))
	}
	var r [4]uint64
	for i, v := range pkt.Variables {
		r[i] = gosnmp.ToBigInt(v.Value).Uint64()
	}
	return reading{r[0], r[1], r[2], r[3]}
}

// TestFailoverContinuesEngine: blade A serves a v3 manager; A dies; blade B takes over from
// the checkpoint. The manager carries on with the same session (no re-discovery: B sends no
// unknownEngineID or notInTimeWindow report), engineTime and every counter read go on from
// where they were, and the user configured on A works on B.
func TestFailoverContinuesEngine(t *testing.T) {
	ck := &memCkpt{}
	addr := freeUDP(t)
	a := startBlade(t, ck, addr, 3)
	a.s.SetActive(true)
	waitUp(t, a)
	if out := a.run(t, "snmp user add ops SHA-256 auth-secret-1 AES priv-secret-1"); !strings.HasPrefix(out, "user ops added") {
		t.Fatalf("snmp user add = %q", out)
	}
	c := v3Client(addr)
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	defer c.Conn.Close()
	var last reading
	for i := 0; i < 20; i++ {
		last = read(t, c)
		// The gate: a response never shows more than the standby already holds.
		if st := ck.saved(t); last.inPkts > st.Counters.InPkts {
			t.Fatalf("response shows snmpInPkts %d, checkpoint holds %d", last.inPkts, st.Counters.InPkts)
		}
	}
	before := a.s.Agent().Counters()
	engineID := a.s.Agent().EngineID()
	a.kill()

	b := startBlade(t, ck, addr, 4)
	b.s.SetActive(true)
	waitUp(t, b)
	got := read(t, c)
	if got.engineTime < last.engineTime {
		t.Errorf("engineTime after failover %d, before %d: went backward", got.engineTime, last.engineTime)
	}
	if got.inPkts <= last.inPkts || got.inGets <= last.inGets || got.hcIn < last.hcIn {
		t.Errorf("counters after failover %+v, before %+v: want every one to go on", got, last)
	}
	after := b.s.Agent().Counters()
	if after.UsmUnknownEngineIDs != before.UsmUnknownEngineIDs || after.UsmNotInTimeWindows != before.UsmNotInTimeWindows {
		t.Errorf("usmStats unknownEngineIDs %d->%d notInTimeWindows %d->%d: the manager had to re-discover",
			before.UsmUnknownEngineIDs, after.UsmUnknownEngineIDs, before.UsmNotInTimeWindows, after.UsmNotInTimeWindows)
	}
	if !bytes.Equal(b.s.Agent().EngineID(), engineID) {
		t.Errorf("engine ID after failover %x, want %x", b.s.Agent().EngineID(), engineID)
	}
	if n := b.s.Activations.Load(); n != 1 {
		t.Errorf("activations of B = %d, want 1", n)
	}
}

// TestCommunitySources: the default community answers the core network only; a community
// added from the console with a source prefix lets the loopback manager in.
func TestCommunitySources(t *testing.T) {
	ck := &memCkpt{}
	addr := freeUDP(t)
	a := startBlade(t, ck, addr, 3)
	a.s.SetActive(true)
	waitUp(t, a)
	c := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: addr.Port(), Version: gosnmp.Version2c, Community: "public",
		Timeout: 200 * time.Millisecond, Retries: 0}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	defer c.Conn.Close()
	if _, err := c.Get([]string{snmpagent.OIDSysUpTime.String()}); err == nil {
		t.Fatal("public from 127.0.0.1 answered; want it refused (core network only)")
	}
	if got := a.s.Agent().Counters().InBadCommunityNames; got != 1 {
		t.Errorf("snmpInBadCommunityNames = %d, want 1", got)
	}
	if out := a.run(t, "snmp community add lo ro 127.0.0.0/8"); !strings.HasPrefix(out, "community lo added") {
		t.Fatalf("snmp community add = %q", out)
	}
	c.Community, c.Retries = "lo", 3
	pkt, err := c.Get([]string{snmpagent.OIDSysUpTime.String()})
	if err != nil || pkt.Error != gosnmp.NoError {
		t.Fatalf("get with community lo: %v", err)
	}
	var v SNMPView
	if err := json.Unmarshal([]byte(a.run(t, "show snmp json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Role != "active" || len(v.Communities) != 2 || v.Communities[0].Name != "lo" || v.Communities[1].Sources[0] != "169.254.3.0/24" {
		t.Errorf("show snmp json = %+v", v)
	}
	// The checkpoint has the new community before the command returned.
	if st := ck.saved(t); len(st.Communities) != 2 {
		t.Errorf("checkpointed communities %+v, want 2", st.Communities)
	}
}

// TestConsoleRefusals: bad arguments print "error:" then "usage:"; secrets never show;
// a standby refuses configuration.
func TestConsoleRefusals(t *testing.T) {
	ck := &memCkpt{}
	addr := freeUDP(t)
	a := startBlade(t, ck, addr, 3)
	for _, line := range []string{
		"snmp user add ops SHA-256 auth-secret-1 AES priv-secret-1", // standby: not running
		"snmp community add x ro",
	} {
		out := a.run(t, line)
		if !strings.HasPrefix(out, "error: ") || !strings.Contains(out, "active mgmt blade") || !strings.Contains(out, "\nusage: ") {
			t.Errorf("on standby %q = %q, want the standby refusal and usage", line, out)
		}
	}
	a.s.SetActive(true)
	waitUp(t, a)
	for _, tc := range []struct{ line, want string }{
		{"snmp user add ops SHA-256 short AES priv-secret-1", "at least 8"},
		{"snmp user add ops SHA-999 auth-secret-1 AES priv-secret-1", "authentication \"SHA-999\""},
		{"snmp user add ops SHA-256 auth-secret-1 ROT13 priv-secret-1", "privacy \"ROT13\""},
		{"snmp user add ops SHA-256 auth-secret-1 AES priv-secret-1 admin", "want ro or rw"},
		{"snmp user add ops SHA-256", "takes 5 to 6 arguments"},
		{"snmp user del nobody", "no user"},
		{"snmp community add x rx", "want ro or rw"},
		{"snmp community add x ro 10.0.0.0/33", "source"},
		{"snmp community del nobody", "no community"},
		{"snmp target add t 10.0.0.1:0 v2c public", "port 0"},
		{"snmp target add t nowhere v2c public", "address \"nowhere\""},
		{"snmp target add t 10.0.0.1 v1 public", "version \"v1\""},
		{"snmp target add t 10.0.0.1 v3 nobody", "unknown user"},
		{"snmp target del nobody", "no target"},
	} {
		out := a.run(t, tc.line)
		if !strings.HasPrefix(out, "error: ") || !strings.Contains(out, tc.want) || !strings.Contains(out, "\nusage: ") {
			t.Errorf("%q = %q, want error with %q and usage", tc.line, out, tc.want)
		}
	}
	for _, line := range []string{
		"snmp user add ops SHA-256 auth-secret-1 AES-256 priv-secret-1 rw",
		"snmp target add mgr 127.0.0.1:1162 v3 ops",
		"snmp target add mgr2 127.0.0.1 v2c public inform",
		"snmp target del mgr2",
	} {
		if out := a.run(t, line); strings.HasPrefix(out, "error") {
			t.Fatalf("%q = %q", line, out)
		}
	}
	out := a.run(t, "show snmp")
	for _, want := range []string{"ops", "SHA-256", "AES-256", "rw", "mgr", "127.0.0.1:1162"} {
		if !strings.Contains(out, want) {
			t.Errorf("show snmp lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "auth-secret-1") || strings.Contains(out, "priv-secret-1") || strings.Contains(a.run(t, "show snmp json"), "secret") {
		t.Errorf("show snmp shows a passphrase:\n%s", out)
	}
	if strings.Contains(out, "mgr2") {
		t.Errorf("deleted target still shown:\n%s", out)
	}
}

func TestParseUser(t *testing.T) {
	u, err := ParseUser(strings.Fields("ops sha-512 12345678 aes-192 abcdefgh rw"))
	if err != nil || u.Auth != gosnmp.SHA512 || u.Priv != gosnmp.AES192 || u.Group != "rw" {
		t.Errorf("ParseUser = %+v, %v", u, err)
	}
	if _, err := ParseUser(strings.Fields("ops SHA 1234567 AES 12345678")); !errors.Is(err, console.ErrUsage) {
		t.Errorf("ParseUser(7-character passphrase) = %v, want ErrUsage", err)
	}
}

// TestShelfOf: the inventory has every configured slot once, with its role, present as the
// membership says, and this blade's FRU and ports.
func TestShelfOf(t *testing.T) {
	members := []clm.Member{{Slot: 1, Up: true}, {Slot: 3, Up: true}, {Slot: 4, Up: false}, {Slot: 5, Up: true}}
	groups := []amf.GroupStatus{
		{Name: "mgmt", Units: []amf.UnitStatus{{Name: "mgmt-3", Node: 3}, {Name: "mgmt-4", Node: 4}}},
		{Name: "switch", Units: []amf.UnitStatus{{Name: "switch-1", Node: 1}}},
		{Name: "olt", Units: []amf.UnitStatus{{Name: "olt-5", Node: 5}}},
	}
	sh := shelfOf(3, members, groups, func() entitymib.FRU { return entitymib.FRU{Serial: "S3"} }, func() []string { return []string{"base0", "base1"} })
	got := fmt.Sprintf("%+v", sh.Slots)
	want := "[{Number:1 Present:true Role:switch Blade:{Serial: Model: MfgName: HardwareRev: FirmwareRev: SoftwareRev:} Ports:[]} " +
		"{Number:3 Present:true Role:mgmt Blade:{Serial:S3 Model: MfgName: HardwareRev: FirmwareRev: SoftwareRev:} Ports:[base0 base1]} " +
		"{Number:4 Present:false Role:mgmt Blade:{Serial: Model: MfgName: HardwareRev: FirmwareRev: SoftwareRev:} Ports:[]} " +
		"{Number:5 Present:true Role:epon Blade:{Serial: Model: MfgName: HardwareRev: FirmwareRev: SoftwareRev:} Ports:[]}]"
	if got != want {
		t.Errorf("shelfOf slots =\n%s\nwant\n%s", got, want)
	}
}

// TestOutCountersThroughCommitPath: responses leaving through the blade's management
// socket (after their checkpoint) are counted in snmpOutPkts and snmpOutGetResponses, as
// net-snmp's snmpget reads them, and the standby's copy never shows more than was sent.
func TestOutCountersThroughCommitPath(t *testing.T) {
	snmpget, err := exec.LookPath("snmpget")
	if err != nil {
		t.Skipf("snmpget not installed (Debian package snmp): %v", err)
	}
	ck := &memCkpt{}
	addr := freeUDP(t)
	a := startBlade(t, ck, addr, 3)
	a.s.SetActive(true)
	waitUp(t, a)
	if out := a.run(t, "snmp community add lo ro 127.0.0.0/8"); !strings.HasPrefix(out, "community lo added") {
		t.Fatalf("snmp community add = %q", out)
	}
	get := func(oids ...string) string {
		t.Helper()
		dir := t.TempDir()
		args := append([]string{"-On", "-Oqv", "-r", "2", "-t", "1", "-v2c", "-c", "lo", "udp:" + addr.String()}, oids...)
		cmd := exec.Command(snmpget, args...)
		cmd.Env = []string{"MIBS=", "MIBDIRS=" + dir, "SNMPCONFPATH=" + dir, "SNMP_PERSISTENT_DIR=" + dir, "HOME=" + dir}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("snmpget %v = %q, %v", oids, out, err)
		}
		return string(out)
	}
	for i := 0; i < 4; i++ {
		get(snmpagent.OIDSysUpTime.String())
	}
	out := get(oidInPkts.String(), snmpagent.OIDSNMP.Append(2, 0).String(), snmpagent.OIDSNMP.Append(28, 0).String())
	var in, outPkts, resp uint64
	if _, err := fmt.Sscan(out, &in, &outPkts, &resp); err != nil {
		t.Fatalf("snmpget counters = %q: %v", out, err)
	}
	if in < 5 || resp != in-1 || outPkts != resp {
		t.Errorf("snmpInPkts %d snmpOutPkts %d snmpOutGetResponses %d; want in >= 5, out = responses = in-1", in, outPkts, resp)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c := a.s.Agent().Counters(); c.OutGetResponses != c.InPkts; c = a.s.Agent().Counters() {
		if time.Now().After(deadline) {
			t.Fatalf("counters %+v: want every request's response counted out", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := ck.saved(t); st.Counters.OutPkts > a.s.Agent().Counters().OutPkts {
		t.Errorf("checkpointed snmpOutPkts %d above the agent's %d", st.Counters.OutPkts, a.s.Agent().Counters().OutPkts)
	}
}

// TestStandbyWarmUp: a standby rehearses the takeover once the active's state is in the
// checkpoint (once, serving nothing), and still takes over with that state.
func TestStandbyWarmUp(t *testing.T) {
	ck := &memCkpt{}
	addr := freeUDP(t)
	a := startBlade(t, ck, addr, 3)
	b := startBlade(t, ck, addr, 4)
	a.s.SetActive(true)
	waitUp(t, a)
	deadline := time.Now().Add(10 * time.Second)
	for b.s.WarmUps.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not rehearse a takeover within 10 s of a checkpointed state")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b.s.Agent() != nil {
		t.Errorf("the standby's warm-up left an agent running")
	}
	engineID := a.s.Agent().EngineID()
	a.kill()
	b.s.SetActive(true)
	waitUp(t, b)
	if !bytes.Equal(b.s.Agent().EngineID(), engineID) {
		t.Errorf("engine ID after a warmed-up takeover %x, want %x", b.s.Agent().EngineID(), engineID)
	}
	if n := b.s.WarmUps.Load(); n != 1 {
		t.Errorf("warm-ups of the standby = %d, want 1 (once per standby)", n)
	}
}
