package snmpagent

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// fakeClock is real time plus an adjustable offset, so net-snmp's tools
// (which use real time) and time-window tests can share one agent.
type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

const (
	testUser     = "ops"
	testAuthPass = "authpass123"
	testPrivPass = "privpass123"
)

// startAgent starts an agent on 127.0.0.1 with communities public (ro),
// private (rw), a SHA-256/AES user and a read-only user with a view.
func startAgent(t *testing.T) (*Agent, *fakeClock) {
	t.Helper()
	clk := &fakeClock{}
	a, err := New(Config{
		EngineID: []byte{0x80, 0, 0x1f, 0x88, 0x04, 't', 'e', 's', 't'},
		Clock:    clk,
		System:   System{Descr: "cgoa test agent", Contact: "noc", Name: "mgmt1", Location: "lab"},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := a.VACM()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(v.AddView(ViewFamily{View: "all", Subtree: MustOID("1")}))
	must(v.AddView(ViewFamily{View: "system", Subtree: MustOID("1.3.6.1.2.1.1")}))
	must(v.AddAccess(Access{Group: "admin", Level: AuthPriv, Read: "all", Write: "all"}))
	must(v.AddAccess(Access{Group: "viewer", Level: AuthNoPriv, Read: "system"}))
	must(a.AddCommunity(Community{Name: "public"}))
	must(a.AddCommunity(Community{Name: "private", Write: true}))
	must(a.AddCommunity(Community{Name: "sysonly", View: "system"}))
	must(a.AddCommunity(Community{Name: "remote", Sources: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}))
	must(a.AddUser(User{Name: testUser, Auth: gosnmp.SHA256, AuthPassphrase: testAuthPass,
		Priv: gosnmp.AES, PrivPassphrase: testPrivPass, Group: "admin"}))
	must(a.AddUser(User{Name: "sha1user", Auth: gosnmp.SHA, AuthPassphrase: testAuthPass, Group: "viewer"}))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); a.Close() })
	must(a.Start(ctx, "127.0.0.1:0"))
	return a, clk
}

func goClient(t *testing.T, a *Agent, version gosnmp.SnmpVersion, community string) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{
		Target: a.Addr().Addr().String(), Port: a.Addr().Port(), Version: version, Community: community,
		Timeout: 500 * time.Millisecond, Retries: 1, MaxOids: 60,
	}
	if version == gosnmp.Version3 {
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = gosnmp.AuthPriv
		g.SecurityParameters = &gosnmp.UsmSecurityParameters{UserName: testUser,
			AuthenticationProtocol: gosnmp.SHA256, AuthenticationPassphrase: testAuthPass,
			PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: testPrivPass}
	}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

func TestGoSNMPClientGet(t *testing.T) {
	a, _ := startAgent(t)
	for _, tc := range []struct {
		name string
		v    gosnmp.SnmpVersion
		comm string
	}{{"v1", gosnmp.Version1, "public"}, {"v2c", gosnmp.Version2c, "public"}, {"v3", gosnmp.Version3, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			g := goClient(t, a, tc.v, tc.comm)
			res, err := g.Get([]string{".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.5.0"})
			if err != nil {
				t.Fatalf("Get = %v", err)
			}
			if res.Error != gosnmp.NoError || len(res.Variables) != 2 {
				t.Fatalf("Get = %v/%d varbinds, want noError/2", res.Error, len(res.Variables))
			}
			if got := string(res.Variables[0].Value.([]byte)); got != "cgoa test agent" {
				t.Errorf("sysDescr = %q, want %q", got, "cgoa test agent")
			}
			walk, err := g.WalkAll(".1.3.6.1.2.1.1")
			if err != nil {
				t.Fatalf("WalkAll = %v", err)
			}
			// 8 scalars + 5 sysORTable rows x 3 columns.
			if len(walk) != 8+15 {
				t.Errorf("walk of system = %d varbinds, want %d", len(walk), 8+15)
			}
		})
	}
	if c := a.Counters(); c.UsmUnknownEngineIDs == 0 {
		t.Errorf("usmStatsUnknownEngineIDs = 0 after v3 discovery, want > 0")
	}
}

func netipAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
