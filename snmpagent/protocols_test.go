package snmpagent

import (
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// Every authentication protocol and the AES key sizes interoperate with
// net-snmp's snmpget (its AES-192/256 use the Blumenthal key extension).
func TestNetSNMPProtocols(t *testing.T) {
	a, _ := startAgent(t)
	if err := a.VACM().AddAccess(Access{Group: "any", Level: AuthNoPriv, Read: "all"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		auth   gosnmp.SnmpV3AuthProtocol
		priv   gosnmp.SnmpV3PrivProtocol
		a, x   string
		levelX string
	}{
		{gosnmp.SHA, gosnmp.AES, "SHA", "AES", "authPriv"},
		{gosnmp.SHA224, gosnmp.NoPriv, "SHA-224", "", "authNoPriv"},
		{gosnmp.SHA256, gosnmp.AES192, "SHA-256", "AES-192", "authPriv"},
		{gosnmp.SHA384, gosnmp.AES, "SHA-384", "AES", "authPriv"},
		{gosnmp.SHA512, gosnmp.AES256, "SHA-512", "AES-256", "authPriv"},
		{gosnmp.MD5, gosnmp.DES, "MD5", "DES", "authPriv"}, // through gosnmp's codec, not the AES fast path
	} {
		name := strings.ToLower(strings.ReplaceAll(tc.a+tc.x, "-", ""))
		if err := a.AddUser(User{Name: name, Auth: tc.auth, AuthPassphrase: testAuthPass, Priv: tc.priv, PrivPassphrase: testPrivPass, Group: "any"}); err != nil {
			t.Fatal(err)
		}
		args := []string{"-v3", "-l", tc.levelX, "-u", name, "-a", tc.a, "-A", testAuthPass}
		if tc.x != "" {
			args = append(args, "-x", tc.x, "-X", testPrivPass)
		}
		out, err := netSNMP(t, "snmpget", append(args, agentArg(a), "1.3.6.1.2.1.1.5.0")...)
		if err != nil || !strings.Contains(out, `"mgmt1"`) {
			t.Errorf("snmpget %s/%s = %q, %v", tc.a, tc.x, out, err)
		}
	}
}
