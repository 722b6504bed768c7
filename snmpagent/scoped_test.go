package snmpagent

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// TestV3FastPathAgreesWithGoSNMP: a v3 authPriv response built by the agent's own envelope
// and AES code decrypts and decodes with gosnmp's v3 decoder, carries a digest the user's key
// verifies, and a tampered response does not verify.
func TestV3FastPathAgreesWithGoSNMP(t *testing.T) {
	a := fuzzAgent(t)
	seeds := seedMessages(t, a)
	req := bytes.Clone(seeds[8]) // v3 authPriv GET sysDescr.0
	resp := a.HandleMessage(req, netip.MustParseAddrPort("127.0.0.1:40000")).Data
	if resp == nil {
		t.Fatal("no response")
	}
	h, err := peekHeader(resp)
	if err != nil {
		t.Fatalf("peekHeader(response) = %v", err)
	}
	a.mu.RLock()
	u := a.users[testUser]
	a.mu.RUnlock()
	if !u.verifyDigest(bytes.Clone(resp), &h) {
		t.Fatal("the response's digest does not verify")
	}
	bad := bytes.Clone(resp)
	bad[len(bad)-1] ^= 1
	if hb, err := peekHeader(bad); err != nil || u.verifyDigest(bad, &hb) {
		t.Fatalf("a tampered response verifies (%v)", err)
	}
	boots, now := a.engineTime()
	sp := &gosnmp.UsmSecurityParameters{UserName: testUser, AuthoritativeEngineID: string(a.EngineID()),
		AuthoritativeEngineBoots: boots, AuthoritativeEngineTime: now,
		AuthenticationProtocol: gosnmp.SHA256, AuthenticationPassphrase: testAuthPass,
		PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: testPrivPass}
	if err := sp.InitSecurityKeys(); err != nil {
		t.Fatal(err)
	}
	dec := gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthPriv, SecurityParameters: sp}
	pkt, err := dec.SnmpDecodePacket(resp)
	if err != nil {
		t.Fatalf("gosnmp decode of the response: %v", err)
	}
	if pkt.PDUType != gosnmp.GetResponse || pkt.Error != gosnmp.NoError || len(pkt.Variables) != 1 ||
		pkt.Variables[0].Name != ".1.3.6.1.2.1.1.1.0" || pkt.ContextEngineID != string(a.EngineID()) {
		t.Errorf("decoded response %+v", pkt)
	}
	usp := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if usp.AuthoritativeEngineBoots != boots || usp.UserName != testUser || len(usp.PrivacyParameters) != 8 {
		t.Errorf("USM parameters %+v", usp)
	}
}

func TestCFBRoundTrip(t *testing.T) {
	blk, err := newPrivBlock(gosnmp.AES256, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 15, 16, 17, 100} {
		plain := bytes.Repeat([]byte{0xa5}, n)
		iv := [16]byte{1, 2, 3}
		b := bytes.Clone(plain)
		cfbEncrypt(blk, &iv, b)
		if n > 0 && bytes.Equal(b, plain) {
			t.Fatalf("cfbEncrypt(%d octets) changed nothing", n)
		}
		cfbDecrypt(blk, &iv, b)
		if !bytes.Equal(b, plain) {
			t.Errorf("cfbDecrypt(cfbEncrypt(%d octets)) = %x, want %x", n, b, plain)
		}
	}
}
