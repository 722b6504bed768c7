// Package kstate checkpoints and restores kernel-side state that a role
// owns, through netlink (the design's kernel/user bridge): the routes a
// role installed, marked with its own routing protocol number, are
// captured as a section's bytes on the active blade and installed again
// on the standby's kernel when it takes over.
//
//	b, err := kstate.CaptureRoutes(nsFD, 188)     // the role's routes
//	ckptNode.Write(ctx, "switch", "routes", b, true)
//	// on takeover:
//	data, _ := ckptNode.Read("switch", "routes")
//	err = kstate.RestoreRoutes(nsFD, data)
//
// Bridge port states (IFLA_BRPORT_STATE of every port of a bridge) go
// the same way; restore writes them like `bridge link set` and reads
// them back:
//
//	b, err := kstate.CaptureBridgePorts(nsFD, "br0")
//	err = kstate.RestoreBridgePorts(nsFD, b)
//
// With the kernel's STP off, a designated port set to blocking turns
// forwarding at once (the kernel's port state selection); a user-space
// STP agent discards with listening instead, and Restore reports a state
// that did not stick as an error. Interfaces are recorded by name
// (indexes differ between blades).
// nsFD is a network namespace file descriptor (0: the caller's own).
package kstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Route is one captured route.
type Route struct {
	Dst      netip.Prefix `json:"dst"`
	Gateway  netip.Addr   `json:"gateway,omitzero"`
	Dev      string       `json:"dev"`
	Priority uint32       `json:"metric"`
	Table    uint32       `json:"table"`
	Protocol uint8        `json:"protocol"`
	Scope    uint8        `json:"scope"`
}

// Routes is what a section holds.
type Routes struct {
	Routes []Route `json:"routes"`
}

// MaxRoutes bounds a decoded section.
const MaxRoutes = 1 << 16

// ErrBad is returned for a section that does not decode.
var ErrBad = errors.New("kstate: bad routes section")

// Decode parses a routes section (bytes from a checkpoint replica).
func Decode(b []byte) (Routes, error) {
	return decode(b, ErrBad, MaxRoutes, func(rs *Routes) []Route { return rs.Routes }, func(r Route) bool {
		return r.Dst.IsValid() && validIfName(r.Dev) && (!r.Gateway.IsValid() || r.Gateway.Is4() == r.Dst.Addr().Is4())
	})
}

// decode parses a section (bytes from a checkpoint replica) whose entries list returns: at
// most max of them, each passing ok. Any failure wraps bad.
func decode[S, E any](b []byte, bad error, max int, list func(*S) []E, ok func(E) bool) (S, error) {
	var s, zero S
	if err := json.Unmarshal(b, &s); err != nil {
		return zero, fmt.Errorf("%w: %v", bad, err)
	}
	es := list(&s)
	if len(es) > max {
		return zero, fmt.Errorf("%w: %d entries, at most %d", bad, len(es), max)
	}
	for _, e := range es {
		if !ok(e) {
			return zero, fmt.Errorf("%w: entry %+v", bad, e)
		}
	}
	return s, nil
}

func dial(nsFD int) (*rtnetlink.Conn, error) {
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: nsFD})
	if err != nil {
		return nil, fmt.Errorf("kstate: netlink: %w", err)
	}
	return c, nil
}

// CaptureRoutes returns the routes of protocol proto (the role's own
// number, e.g. 188) in every table, sorted, as a section's bytes.
func CaptureRoutes(nsFD int, proto uint8) ([]byte, error) {
	c, err := dial(nsFD)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	names, _, err := linkNames(c)
	if err != nil {
		return nil, err
	}
	var rs Routes
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		msgs, err := c.Route.ListMatch(&rtnetlink.RouteMessage{Family: fam})
		if err != nil {
			return nil, fmt.Errorf("kstate: routes: %w", err)
		}
		for _, m := range msgs {
			if m.Protocol != proto {
				continue
			}
			dst, ok := netip.AddrFromSlice(m.Attributes.Dst)
			if !ok {
				dst = netip.IPv4Unspecified()
				if fam == unix.AF_INET6 {
					dst = netip.IPv6Unspecified()
				}
			}
			r := Route{Dst: netip.PrefixFrom(dst.Unmap(), int(m.DstLength)), Dev: names[m.Attributes.OutIface],
				Priority: m.Attributes.Priority, Table: m.Attributes.Table, Protocol: m.Protocol, Scope: m.Scope}
			if gw, ok := netip.AddrFromSlice(m.Attributes.Gateway); ok {
				r.Gateway = gw.Unmap()
			}
			if r.Table == 0 {
				r.Table = uint32(m.Table)
			}
			rs.Routes = append(rs.Routes, r)
		}
	}
	slices.SortFunc(rs.Routes, func(a, b Route) int {
		if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
			return c
		}
		return a.Dst.Bits() - b.Dst.Bits()
	})
	return json.Marshal(rs)
}

// RestoreRoutes installs (replacing) every route of a captured section.
func RestoreRoutes(nsFD int, section []byte) error {
	rs, err := Decode(section)
	if err != nil {
		return err
	}
	c, err := dial(nsFD)
	if err != nil {
		return err
	}
	defer c.Close()
	_, index, err := linkNames(c)
	if err != nil {
		return err
	}
	for _, r := range rs.Routes {
		ifi, ok := index[r.Dev]
		if !ok {
			return fmt.Errorf("kstate: no interface %q", r.Dev)
		}
		fam := uint8(unix.AF_INET)
		if r.Dst.Addr().Is6() {
			fam = unix.AF_INET6
		}
		m := &rtnetlink.RouteMessage{Family: fam, DstLength: uint8(r.Dst.Bits()), Table: unix.RT_TABLE_UNSPEC,
			Protocol: r.Protocol, Scope: r.Scope, Type: unix.RTN_UNICAST,
			Attributes: rtnetlink.RouteAttributes{Dst: net.IP(r.Dst.Addr().AsSlice()), OutIface: ifi, Priority: r.Priority, Table: r.Table}}
		if r.Gateway.IsValid() {
			m.Attributes.Gateway = net.IP(r.Gateway.AsSlice())
		}
		if err := c.Route.Replace(m); err != nil {
			return fmt.Errorf("kstate: restore route %v dev %s: %w", r.Dst, r.Dev, err)
		}
	}
	return nil
}

// linkNames lists the links once: names by index and indexes by name (interfaces are
// recorded by name, as indexes differ between blades).
func linkNames(c *rtnetlink.Conn) (map[uint32]string, map[string]uint32, error) {
	links, err := c.Link.List()
	if err != nil {
		return nil, nil, fmt.Errorf("kstate: links: %w", err)
	}
	names, index := map[uint32]string{}, map[string]uint32{}
	for _, l := range links {
		if l.Attributes != nil {
			names[l.Index] = l.Attributes.Name
			index[l.Attributes.Name] = l.Index
		}
	}
	return names, index, nil
}
