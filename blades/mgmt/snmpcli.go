package mgmt

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gosnmp/gosnmp"

	"github.com/cgoa/cgoa/blades/console"
	"github.com/cgoa/cgoa/blades/statefeed"
	"github.com/cgoa/cgoa/snmpagent"
)

// CoreNetwork is the network the default community is restricted to: the core network in
// front of the shelf, where the management address lives.
var CoreNetwork = netip.MustParsePrefix("169.254.3.0/24")

// VACM names of the default configuration: view "all" is the whole tree; USM users are in
// group "ro" (read, notify) or "rw" (read, write, notify), both at authPriv.
const (
	viewAll = "all"
	groupRO = "ro"
	groupRW = "rw"
)

// DefaultConfig is a new engine's configuration: community "public", read-only, from the
// core network only; the views and groups users are added to. No user: operators add them
// from the console.
func DefaultConfig(a *snmpagent.Agent) error {
	v := a.VACM()
	if err := v.AddView(snmpagent.ViewFamily{View: viewAll, Subtree: snmpagent.OID{1}}); err != nil {
		return err
	}
	for _, ac := range []snmpagent.Access{
		{Group: groupRO, Model: snmpagent.ModelUSM, Level: snmpagent.AuthPriv, Read: viewAll, Notify: viewAll},
		{Group: groupRW, Model: snmpagent.ModelUSM, Level: snmpagent.AuthPriv, Read: viewAll, Write: viewAll, Notify: viewAll},
	} {
		if err := v.AddAccess(ac); err != nil {
			return err
		}
	}
	return a.AddCommunity(snmpagent.Community{Name: "public", View: viewAll, Sources: []netip.Prefix{CoreNetwork}})
}

var authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
	"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA-1": gosnmp.SHA, "SHA-224": gosnmp.SHA224,
	"SHA-256": gosnmp.SHA256, "SHA-384": gosnmp.SHA384, "SHA-512": gosnmp.SHA512,
}

var privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
	"DES": gosnmp.DES, "AES": gosnmp.AES, "AES-128": gosnmp.AES, "AES-192": gosnmp.AES192,
	"AES-256": gosnmp.AES256, "AES-192C": gosnmp.AES192C, "AES-256C": gosnmp.AES256C,
}

func protoName[P comparable](m map[string]P, p P) string {
	var names []string
	for n, v := range m {
		if v == p {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none"
	}
	// The longest spelling is the explicit one (SHA-1 over SHA, AES-128 over AES).
	slices.SortStableFunc(names, func(a, b string) int { return len(b) - len(a) })
	return names[0]
}

func keys[V any](m map[string]V) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}

// minPassphrase is RFC 3414's minimum (11.2: at least 8 octets; net-snmp refuses shorter).
const minPassphrase = 8

// ParseUser parses `snmp user add` arguments: NAME AUTH AUTHPASS PRIV PRIVPASS [ro|rw].
func ParseUser(args []string) (snmpagent.User, error) {
	if len(args) < 5 || len(args) > 6 {
		return snmpagent.User{}, fmt.Errorf("%w: want NAME AUTH AUTHPASS PRIV PRIVPASS [ro|rw]", console.ErrUsage)
	}
	u := snmpagent.User{Name: args[0], AuthPassphrase: args[2], PrivPassphrase: args[4], Group: groupRO}
	if len(u.Name) > 32 {
		return u, fmt.Errorf("%w: user name of %d octets, at most 32", console.ErrUsage, len(u.Name))
	}
	var ok bool
	if u.Auth, ok = authProtocols[strings.ToUpper(args[1])]; !ok {
		return u, fmt.Errorf("%w: authentication %q: want one of %s", console.ErrUsage, args[1], keys(authProtocols))
	}
	if u.Priv, ok = privProtocols[strings.ToUpper(args[3])]; !ok {
		return u, fmt.Errorf("%w: privacy %q: want one of %s", console.ErrUsage, args[3], keys(privProtocols))
	}
	if len(u.AuthPassphrase) < minPassphrase || len(u.PrivPassphrase) < minPassphrase {
		return u, fmt.Errorf("%w: passphrases need at least %d characters", console.ErrUsage, minPassphrase)
	}
	if len(args) == 6 {
		switch args[5] {
		case groupRO, groupRW:
			u.Group = args[5]
		default:
			return u, fmt.Errorf("%w: access %q: want ro or rw", console.ErrUsage, args[5])
		}
	}
	return u, nil
}

// ParseCommunity parses `snmp community add` arguments: NAME ro|rw [PREFIX...].
func ParseCommunity(args []string) (snmpagent.Community, error) {
	if len(args) < 2 {
		return snmpagent.Community{}, fmt.Errorf("%w: want NAME ro|rw [PREFIX...]", console.ErrUsage)
	}
	c := snmpagent.Community{Name: args[0], View: viewAll}
	if len(c.Name) > 127 {
		return c, fmt.Errorf("%w: community of %d octets, at most 127", console.ErrUsage, len(c.Name))
	}
	switch args[1] {
	case "ro":
	case "rw":
		c.Write = true
	default:
		return c, fmt.Errorf("%w: access %q: want ro or rw", console.ErrUsage, args[1])
	}
	for _, a := range args[2:] {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			addr, aerr := netip.ParseAddr(a)
			if aerr != nil {
				return c, fmt.Errorf("%w: source %q: want an address or PREFIX/LEN", console.ErrUsage, a)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.Sources = append(c.Sources, p.Masked())
	}
	return c, nil
}

// ParseTarget parses `snmp target add` arguments:
// NAME ADDR[:PORT] v2c COMMUNITY [inform] | NAME ADDR[:PORT] v3 USER.
func ParseTarget(args []string) (snmpagent.Target, error) {
	usage := fmt.Errorf("%w: want NAME ADDR[:PORT] v2c COMMUNITY [inform] or NAME ADDR[:PORT] v3 USER", console.ErrUsage)
	if len(args) < 4 || len(args) > 5 {
		return snmpagent.Target{}, usage
	}
	t := snmpagent.Target{Name: args[0]}
	ap, err := netip.ParseAddrPort(args[1])
	if err != nil {
		addr, aerr := netip.ParseAddr(args[1])
		if aerr != nil {
			return t, fmt.Errorf("%w: address %q: want ADDR or ADDR:PORT", console.ErrUsage, args[1])
		}
		ap = netip.AddrPortFrom(addr, 162)
	}
	if ap.Port() == 0 {
		return t, fmt.Errorf("%w: address %q: port 0", console.ErrUsage, args[1])
	}
	t.Addr = ap
	switch args[2] {
	case "v2c":
		t.Version, t.Community = gosnmp.Version2c, args[3]
		if len(args) == 5 {
			if args[4] != "inform" {
				return t, usage
			}
			t.Inform = true
		}
	case "v3":
		if len(args) != 4 {
			return t, usage
		}
		t.Version, t.User, t.Level = gosnmp.Version3, args[3], snmpagent.AuthPriv
	default:
		return t, fmt.Errorf("%w: version %q: want v2c or v3", console.ErrUsage, args[2])
	}
	return t, nil
}

// SNMPView is `show snmp`: configuration without secrets, counters.
type SNMPView struct {
	Role        string             `json:"role"` // active, or standby (showing the checkpointed state)
	Address     string             `json:"address"`
	EngineID    string             `json:"engine_id,omitempty"`
	EngineBoots uint32             `json:"engine_boots"`
	EngineTime  uint32             `json:"engine_time"`
	Communities []CommunityView    `json:"communities"`
	Users       []UserView         `json:"users"`
	Targets     []TargetView       `json:"targets"`
	Counters    snmpagent.Counters `json:"counters"`
	Service     ServiceCounters    `json:"service"`
	// Feed is the shelf state feed's receive counters (BRIDGE-MIB, DOT3-EPON-MIB), with how
	// many EPON blades and bridges it holds fresh.
	Feed *FeedView `json:"feed,omitempty"`
}

// FeedView is the state feed in show snmp.
type FeedView struct {
	statefeed.Counters
	EPONBlades int  `json:"epon_blades"`
	ONUs       int  `json:"onus"`
	Bridge     bool `json:"bridge"`
}

// CommunityView is a community; its name is the v1/v2c secret an operator configures, so it
// is shown.
type CommunityView struct {
	Name    string   `json:"name"`
	Access  string   `json:"access"`
	Sources []string `json:"sources"`
}

// UserView is a USM user without passphrases.
type UserView struct {
	Name  string `json:"name"`
	Auth  string `json:"auth"`
	Priv  string `json:"priv"`
	Group string `json:"group"`
}

// TargetView is a notification target.
type TargetView struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Version string `json:"version"`
	User    string `json:"user,omitempty"`
	Inform  bool   `json:"inform,omitempty"`
}

// ServiceCounters are the mgmt blade's own counters around the agent.
type ServiceCounters struct {
	Responses    uint64 `json:"responses"`
	Commits      uint64 `json:"checkpoint_commits"`
	CommitFails  uint64 `json:"checkpoint_failures"`
	NotActive    uint64 `json:"dropped_not_active"`
	Activations  uint64 `json:"activations"`
	WarmUps      uint64 `json:"standby_warm_ups"` // takeovers rehearsed while standby
	TrapsSent    uint64 `json:"traps_sent"`
	TrapsFailed  uint64 `json:"traps_failed"`
	TrapsDropped uint64 `json:"traps_dropped"`
	// Sealed says the checkpointed state is encrypted (AES-GCM under a key derived from the
	// shelf key); Refused counts checkpointed states that failed to open or decode.
	Sealed  bool   `json:"checkpoint_sealed"`
	Refused uint64 `json:"checkpoint_refused"`
	Legacy  uint64 `json:"checkpoint_unsealed_reads"` // sections from firmware that did not seal
}

// View returns `show snmp` data: the live agent's on the active blade, the checkpointed
// state on a standby.
func (s *SNMP) View() (SNMPView, error) {
	v := SNMPView{Role: "active", Address: s.cfg.Addr.String(),
		Service: ServiceCounters{Responses: s.Responses.Load(), Commits: s.Commits.Load(), CommitFails: s.CommitFails.Load(),
			NotActive: s.NotActive.Load(), Activations: s.Activations.Load(), WarmUps: s.WarmUps.Load(),
			TrapsSent: s.traps.Sent(), TrapsFailed: s.traps.Failed(), TrapsDropped: s.traps.Dropped(),
			Refused: s.CkptRefused.Load()}}
	if sc, ok := s.cfg.Ckpt.(*sealedCkpt); ok {
		v.Service.Sealed, v.Service.Legacy = true, sc.legacy.Load()
	}
	if f := s.cfg.Feed; f != nil {
		fv := &FeedView{Counters: f.Counters()}
		for _, b := range f.PONs() {
			fv.EPONBlades++
			for _, p := range b.PONs {
				fv.ONUs += len(p.ONUs)
			}
		}
		_, fv.Bridge = f.Bridge()
		v.Feed = fv
	}
	var st snmpagent.State
	if a := s.Agent(); a != nil {
		st = a.Export()
	} else {
		v.Role = "standby"
		data, _, err := s.cfg.Ckpt.Load()
		if err != nil {
			return v, err
		}
		if data != nil {
			var cs snmpState
			if err := json.Unmarshal(data, &cs); err != nil {
				return v, fmt.Errorf("snmp: checkpointed state: %w", err)
			}
			st = cs.Agent
		}
	}
	if st.EngineID != nil {
		v.EngineID = hex.EncodeToString(st.EngineID)
	}
	v.EngineBoots, v.EngineTime, v.Counters = st.EngineBoots, st.EngineTime, st.Counters
	v.Communities, v.Users, v.Targets = []CommunityView{}, []UserView{}, []TargetView{}
	for _, c := range st.Communities {
		cv := CommunityView{Name: c.Name, Access: "ro", Sources: []string{}}
		if c.Write {
			cv.Access = "rw"
		}
		for _, p := range c.Sources {
			cv.Sources = append(cv.Sources, p.String())
		}
		v.Communities = append(v.Communities, cv)
	}
	for _, u := range st.Users {
		v.Users = append(v.Users, UserView{Name: u.Name, Auth: protoName(authProtocols, u.Auth), Priv: protoName(privProtocols, u.Priv), Group: u.Group})
	}
	for _, t := range sortedTargets(st.Targets) {
		tv := TargetView{Name: t.Name, Address: t.Addr.String(), Version: "v2c", Inform: t.Inform}
		if t.Version == gosnmp.Version3 {
			tv.Version, tv.User = "v3", t.User
		}
		v.Targets = append(v.Targets, tv)
	}
	return v, nil
}

// WriteSNMPView prints `show snmp`.
func WriteSNMPView(w io.Writer, v SNMPView) {
	fmt.Fprintf(w, "snmp agent %s on %s, engine %s boots %d time %ds\n", v.Role, v.Address, orDash(v.EngineID), v.EngineBoots, v.EngineTime)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "community\taccess\tsources\n")
	for _, c := range v.Communities {
		src := strings.Join(c.Sources, ",")
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Access, orDash(src))
	}
	fmt.Fprintf(tw, "user\tauth\tpriv\tgroup\n")
	for _, u := range v.Users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Auth, u.Priv, u.Group)
	}
	fmt.Fprintf(tw, "target\taddress\tversion\tuser\n")
	for _, t := range v.Targets {
		kind := t.Version
		if t.Inform {
			kind += " inform"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Address, kind, orDash(t.User))
	}
	tw.Flush()
	c := v.Counters
	fmt.Fprintf(w, "in %d out %d get %d getnext %d getbulk %d set %d traps %d informs %d\n",
		c.InPkts, c.OutPkts, c.InGetRequests, c.InGetNexts, c.InGetBulks, c.InSetRequests, c.OutTraps, c.OutInforms)
	fmt.Fprintf(w, "bad community %d/%d, parse errors %d, usm: unknown user %d, wrong digest %d, not in time window %d, decryption %d, unknown engine %d\n",
		c.InBadCommunityNames, c.InBadCommunityUses, c.InASNParseErrs, c.UsmUnknownUserNames, c.UsmWrongDigests,
		c.UsmNotInTimeWindows, c.UsmDecryptionErrors, c.UsmUnknownEngineIDs)
	sc := v.Service
	fmt.Fprintf(w, "responses %d after %d checkpoint commits (%d failed), dropped without lease %d, activations %d (warm-ups %d), traps sent %d failed %d dropped %d\n",
		sc.Responses, sc.Commits, sc.CommitFails, sc.NotActive, sc.Activations, sc.WarmUps, sc.TrapsSent, sc.TrapsFailed, sc.TrapsDropped)
	fmt.Fprintf(w, "checkpoint %s, refused %d, unsealed sections read %d\n",
		map[bool]string{true: "sealed (AES-GCM, shelf key)", false: "NOT sealed"}[sc.Sealed], sc.Refused, sc.Legacy)
	if f := v.Feed; f != nil {
		fmt.Fprintf(w, "state feed: %d EPON blades, %d ONUs, bridge %v; frames %d, publications %d, events %d, bad frames %d, bad bodies %d, abandoned %d\n",
			f.EPONBlades, f.ONUs, f.Bridge, f.Frames, f.Publications, f.Events, f.BadFrames, f.BadBodies, f.Abandoned)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// RegisterCommands adds show snmp and the snmp configuration commands to c.
func (s *SNMP) RegisterCommands(c *console.Console) {
	c.View([]string{"show", "snmp"}, "", "SNMP agent: communities, users (no secrets), targets, counters", 0, 0,
		func([]string) (any, error) { return s.View() },
		func(w io.Writer, v any) { WriteSNMPView(w, v.(SNMPView)) })
	c.Action([]string{"snmp", "user", "add"}, "NAME AUTH AUTHPASS PRIV PRIVPASS [ro|rw]",
		"add an SNMPv3 user (authPriv; AUTH "+keys(authProtocols)+"; PRIV "+keys(privProtocols)+")", 5, 6,
		func(w io.Writer, args []string) error {
			u, err := ParseUser(args)
			if err != nil {
				return err
			}
			if err := s.change(func(a *snmpagent.Agent) error { return a.AddUser(u) }); err != nil {
				return err
			}
			fmt.Fprintf(w, "user %s added (%s/%s, group %s)\n", u.Name, protoName(authProtocols, u.Auth), protoName(privProtocols, u.Priv), u.Group)
			return nil
		})
	c.Action([]string{"snmp", "user", "del"}, "NAME", "delete an SNMPv3 user", 1, 1, func(w io.Writer, args []string) error {
		if err := s.change(func(a *snmpagent.Agent) error {
			if !slices.ContainsFunc(a.Export().Users, func(u snmpagent.User) bool { return u.Name == args[0] }) {
				return fmt.Errorf("%w: no user %q", console.ErrUsage, args[0])
			}
			a.RemoveUser(args[0])
			return nil
		}); err != nil {
			return err
		}
		fmt.Fprintf(w, "user %s deleted\n", args[0])
		return nil
	})
	c.Action([]string{"snmp", "community", "add"}, "NAME ro|rw [PREFIX...]", "add or replace a v1/v2c community (PREFIX: allowed managers)", 2, -1,
		func(w io.Writer, args []string) error {
			cm, err := ParseCommunity(args)
			if err != nil {
				return err
			}
			if err := s.change(func(a *snmpagent.Agent) error { return a.AddCommunity(cm) }); err != nil {
				return err
			}
			fmt.Fprintf(w, "community %s added\n", cm.Name)
			return nil
		})
	c.Action([]string{"snmp", "community", "del"}, "NAME", "delete a community", 1, 1, func(w io.Writer, args []string) error {
		if err := s.change(func(a *snmpagent.Agent) error {
			if !slices.ContainsFunc(a.Export().Communities, func(c snmpagent.Community) bool { return c.Name == args[0] }) {
				return fmt.Errorf("%w: no community %q", console.ErrUsage, args[0])
			}
			a.RemoveCommunity(args[0])
			return nil
		}); err != nil {
			return err
		}
		fmt.Fprintf(w, "community %s deleted\n", args[0])
		return nil
	})
	c.Action([]string{"snmp", "target", "add"}, "NAME ADDR[:PORT] v2c COMMUNITY [inform] | NAME ADDR[:PORT] v3 USER",
		"add or replace a notification target", 4, 5, func(w io.Writer, args []string) error {
			t, err := ParseTarget(args)
			if err != nil {
				return err
			}
			if err := s.change(func(a *snmpagent.Agent) error { return a.AddTarget(t) }); err != nil {
				return err
			}
			fmt.Fprintf(w, "target %s added (%s)\n", t.Name, t.Addr)
			return nil
		})
	c.Action([]string{"snmp", "target", "del"}, "NAME", "delete a notification target", 1, 1, func(w io.Writer, args []string) error {
		if err := s.change(func(a *snmpagent.Agent) error {
			// The agent has no RemoveTarget: re-import its own state without the target.
			st := a.Export()
			i := slices.IndexFunc(st.Targets, func(t snmpagent.Target) bool { return t.Name == args[0] })
			if i < 0 {
				return fmt.Errorf("%w: no target %q", console.ErrUsage, args[0])
			}
			st.Targets = slices.Delete(st.Targets, i, i+1)
			return a.Import(st)
		}); err != nil {
			return err
		}
		fmt.Fprintf(w, "target %s deleted\n", args[0])
		return nil
	})
}
