package kstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// Neighbor is one captured neighbour (ARP) entry: an address on a link, and its MAC.
type Neighbor struct {
	Addr netip.Addr `json:"addr"`
	MAC  string     `json:"mac"`
	Dev  string     `json:"dev"`
}

// Neighbors is what a neighbours section holds.
type Neighbors struct {
	Neighbors []Neighbor `json:"neighbors"`
}

// MaxNeighbors bounds a decoded section.
const MaxNeighbors = 4096

// ErrBadNeighbors is returned for a neighbours section that does not decode.
var ErrBadNeighbors = errors.New("kstate: bad neighbours section")

// DecodeNeighbors parses a neighbours section (bytes from a checkpoint replica).
func DecodeNeighbors(b []byte) (Neighbors, error) {
	return decode(b, ErrBadNeighbors, MaxNeighbors, func(ns *Neighbors) []Neighbor { return ns.Neighbors }, func(n Neighbor) bool {
		mac, err := net.ParseMAC(n.MAC)
		return n.Addr.IsValid() && !n.Addr.IsUnspecified() && err == nil && len(mac) == 6 && validIfName(n.Dev)
	})
}

// usable are the neighbour states worth carrying to another blade: the address answered (or
// was set by hand) with the MAC recorded.
const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT

// CaptureNeighbors returns, as a section's bytes, the IPv4 neighbour entries on the links
// devs whose address lies in within and whose MAC is known, sorted. A blade that takes over
// an address restores them (RestoreNeighbors), so that its first answers to the hosts that
// talked to the old active do not wait for an ARP round trip each.
func CaptureNeighbors(nsFD int, devs []string, within netip.Prefix) ([]byte, error) {
	c, err := dial(nsFD)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	names, _, err := linkNames(c)
	if err != nil {
		return nil, err
	}
	msgs, err := c.Neigh.List()
	if err != nil {
		return nil, fmt.Errorf("kstate: neighbours: %w", err)
	}
	var ns Neighbors
	for _, m := range msgs {
		dev, ok := names[m.Index]
		if !ok || !slices.Contains(devs, dev) || m.State&usable == 0 || m.Attributes == nil || len(m.Attributes.LLAddress) != 6 {
			continue
		}
		a, ok := netip.AddrFromSlice(m.Attributes.Address)
		if !ok || !within.Contains(a.Unmap()) {
			continue
		}
		ns.Neighbors = append(ns.Neighbors, Neighbor{Addr: a.Unmap(), MAC: m.Attributes.LLAddress.String(), Dev: dev})
	}
	slices.SortFunc(ns.Neighbors, func(a, b Neighbor) int {
		if c := strings.Compare(a.Dev, b.Dev); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	return json.Marshal(ns)
}

// RestoreNeighbors installs the entries of a captured section that the kernel does not have
// yet, as stale: used at once, and confirmed by the kernel's own unicast probe on first use.
// A host whose MAC changed since the capture is found again by the kernel's usual path (the
// probe fails, the entry fails, a broadcast request follows): the same few seconds a stale
// entry of the kernel's own would cost. An entry the kernel already holds is left alone. It
// returns how many it installed.
func RestoreNeighbors(nsFD int, section []byte) (int, error) {
	ns, err := DecodeNeighbors(section)
	if err != nil {
		return 0, err
	}
	if len(ns.Neighbors) == 0 {
		return 0, nil
	}
	c, err := dial(nsFD)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_, index, err := linkNames(c)
	if err != nil {
		return 0, err
	}
	added := 0
	for _, n := range ns.Neighbors {
		ifi, ok := index[n.Dev]
		if !ok {
			continue // a link this blade lacks (a one-hub shelf)
		}
		mac, _ := net.ParseMAC(n.MAC)
		err := c.Neigh.New(&rtnetlink.NeighMessage{Family: unix.AF_INET, Index: ifi, State: unix.NUD_STALE,
			Attributes: &rtnetlink.NeighAttributes{Address: net.IP(n.Addr.AsSlice()), LLAddress: mac}})
		switch {
		case err == nil:
			added++
		case errors.Is(err, unix.EEXIST):
		default:
			return added, fmt.Errorf("kstate: restore neighbour %v dev %s: %w", n.Addr, n.Dev, err)
		}
	}
	return added, nil
}
