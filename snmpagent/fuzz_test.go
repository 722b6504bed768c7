package snmpagent

import (
	"net/netip"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// fuzzAgent is an agent that is never started: HandleMessage is the whole
// request path from bytes to response bytes.
func fuzzAgent(tb testing.TB) *Agent {
	a, err := New(Config{EngineID: []byte{0x80, 0, 0x1f, 0x88, 0x04, 'f', 'u', 'z', 'z'}})
	if err != nil {
		tb.Fatal(err)
	}
	_ = a.VACM().AddView(ViewFamily{View: "all", Subtree: MustOID("1")})
	_ = a.VACM().AddAccess(Access{Group: "admin", Level: NoAuthNoPriv, Read: "all", Write: "all"})
	_ = a.AddCommunity(Community{Name: "public", Write: true})
	_ = a.AddUser(User{Name: testUser, Auth: gosnmp.SHA256, AuthPassphrase: testAuthPass,
		Priv: gosnmp.AES, PrivPassphrase: testPrivPass, Group: "admin"})
	_ = a.AddUser(User{Name: "plain", Group: "admin"})
	return a
}

// seedMessages returns well-formed requests of each kind, encoded by gosnmp.
func seedMessages(tb testing.TB, a *Agent) [][]byte {
	var seeds [][]byte
	vbs := []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.1.0", Type: gosnmp.Null}}
	for _, v := range []gosnmp.SnmpVersion{gosnmp.Version1, gosnmp.Version2c} {
		g := &gosnmp.GoSNMP{Version: v, Community: "public"}
		for _, pt := range []gosnmp.PDUType{gosnmp.GetRequest, gosnmp.GetNextRequest, gosnmp.GetBulkRequest} {
			b, err := g.SnmpEncodePacket(pt, vbs, 0, 5)
			if err != nil {
				tb.Fatal(err)
			}
			seeds = append(seeds, b)
		}
		b, err := g.SnmpEncodePacket(gosnmp.SetRequest, []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.6.0", Type: gosnmp.OctetString, Value: "x"}}, 0, 0)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	boots, now := a.engineTime()
	for _, lvl := range []gosnmp.SnmpV3MsgFlags{gosnmp.AuthPriv, gosnmp.NoAuthNoPriv} {
		sp := &gosnmp.UsmSecurityParameters{UserName: testUser, AuthoritativeEngineID: string(a.EngineID()),
			AuthoritativeEngineBoots: boots, AuthoritativeEngineTime: now,
			AuthenticationProtocol: gosnmp.SHA256, AuthenticationPassphrase: testAuthPass,
			PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: testPrivPass}
		if lvl == gosnmp.NoAuthNoPriv {
			sp = &gosnmp.UsmSecurityParameters{UserName: "plain", AuthoritativeEngineID: string(a.EngineID())}
		}
		if err := sp.InitSecurityKeys(); err != nil {
			tb.Fatal(err)
		}
		g := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: lvl, SecurityParameters: sp}
		b, err := g.SnmpEncodePacket(gosnmp.GetRequest, vbs, 0, 0)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	// Engine discovery probe.
	g := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.NoAuthNoPriv,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "x"}}
	b, err := g.SnmpEncodePacket(gosnmp.GetRequest, nil, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	seeds = append(seeds, b, []byte{0x30, 0x00}, []byte{0x30, 0x82, 0xff})
	return seeds
}

func FuzzHandleMessage(f *testing.F) {
	a := fuzzAgent(f)
	for _, s := range seedMessages(f, a) {
		f.Add(s)
	}
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	f.Fuzz(func(t *testing.T, msg []byte) {
		before := a.Counters().InPkts
		out := a.HandleMessage(append([]byte(nil), msg...), from).Data
		if a.Counters().InPkts != before+1 {
			t.Fatalf("snmpInPkts did not count the message")
		}
		if out != nil {
			if _, err := peekHeader(out); err != nil {
				t.Fatalf("agent answered with a malformed message: %v", err)
			}
		}
	})
}

func TestSeedsAnswered(t *testing.T) {
	a := fuzzAgent(t)
	seeds := seedMessages(t, a)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	for i, s := range seeds {
		out := a.HandleMessage(s, from).Data
		// Seed 2 is a v1 GetBulk, which v1 does not have; the last two
		// are junk.
		junk := i == 2 || i >= len(seeds)-2
		if (out == nil) != junk {
			t.Errorf("HandleMessage(seed %d) answered = %v, want %v", i, out != nil, !junk)
		}
	}
	if c := a.Counters(); c.InASNParseErrs != 3 {
		t.Errorf("snmpInASNParseErrs = %d, want 3", c.InASNParseErrs)
	}
}
