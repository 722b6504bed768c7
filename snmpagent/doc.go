// Package snmpagent is the shelf's SNMP agent (command responder and
// notification originator) built on gosnmp's BER codec: SNMPv1 and v2c
// with communities, SNMPv3 with USM (HMAC-SHA-1/SHA-2 authentication,
// AES/DES privacy, engine discovery, time window) and VACM views.
//
// gosnmp is a manager library: it decodes and encodes messages but has no
// listener, no MIB and does not verify incoming HMACs. This package frames
// each v3 message itself (wire.go), runs the RFC 3414 checks in order —
// engine ID, user, security level, digest (constant time), time window —
// and only then hands the message to gosnmp to decrypt and decode.
//
// Use:
//
//	a, _ := snmpagent.New(snmpagent.Config{System: snmpagent.System{Descr: "mgmt blade"}})
//	a.AddCommunity(snmpagent.Community{Name: "public"})
//	a.AddUser(snmpagent.User{Name: "ops", Auth: gosnmp.SHA256, AuthPassphrase: "...",
//		Priv: gosnmp.AES, PrivPassphrase: "...", Group: "admin"})
//	a.VACM().AddView(snmpagent.ViewFamily{View: "all", Subtree: snmpagent.MustOID("1")})
//	a.VACM().AddAccess(snmpagent.Access{Group: "admin", Level: snmpagent.AuthPriv, Read: "all", Write: "all"})
//	a.Start(ctx, "127.0.0.1:161")
//
// MIB modules register subtrees in a.Tree() with a Handler (Get/Next, and
// Setter for writable objects), or with the NewScalarGroup and NewTable
// helpers, and announce themselves with AddSysOR. Every agent serves the
// SNMPv2-MIB system and snmp groups, sysORTable, snmpEngine, usmStats and
// the MPD stats.
//
// Callers that own the socket (the mgmt blade answers only after a checkpoint) use
// HandleMessage and report each response they actually write with Sent, which counts it in
// snmpOutPkts, snmpOutGetResponses and the snmpOut<error-status> counters; Start's own
// socket does so itself.
//
// For speed the agent encodes its Response-PDUs itself (ber.go; gosnmp's encoder for values
// of other Go types), and on the v3 request path with AES privacy it decrypts the scoped PDU
// and builds the response's USM envelope, AES encryption and HMAC itself, with per-user cipher
// blocks and pooled HMACs (scoped.go); gosnmp decodes every PDU. DES users go through
// gosnmp's v3 codec.
//
// Export and Import move the state that must survive a failover (engine
// ID, boots, engine time, counters, SET-able configuration) to a standby.
//
// Known limits (from gosnmp's codec): error-index is at most 255 and
// request-ids are treated as unsigned.
package snmpagent
