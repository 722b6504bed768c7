// Package garp announces IPv4 addresses by gratuitous ARP: an ARP reply from a port's own MAC,
// broadcast, so that switches and hosts move an address to this port at once (a management
// address taken over, traffic moved to the other hub's channel).
//
// An Announcer keeps one ARP socket per port open: under emulation opening a packet socket
// costs tens of milliseconds, and announcements are on the failover path. Use:
//
//	a := garp.New("")             // or a network namespace path (tests)
//	a.Open("base0", "base1")      // at start; a port that fails is opened at its first use
//	n, err := a.Announce("base0", addr)
//	defer a.Close()
package garp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"

	"github.com/cgoa/cgoa/netstack/netns"
)

// Announcer sends gratuitous ARPs over sockets it keeps per port. It is safe for concurrent
// use.
type Announcer struct {
	netns string
	mu    sync.Mutex
	conns map[string]*arp.Client
}

// New returns an Announcer whose sockets are opened in the network namespace at path ("" is
// the process's own).
func New(path string) *Announcer { return &Announcer{netns: path, conns: map[string]*arp.Client{}} }

// Open opens the sockets of ports now. Ports that fail are reported together and opened at
// their first Announce.
func (a *Announcer) Open(ports ...string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, p := range ports {
		if _, err := a.conn(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// conn returns port's socket, opening it if needed (a.mu held).
func (a *Announcer) conn(port string) (*arp.Client, error) {
	if c := a.conns[port]; c != nil {
		return c, nil
	}
	var c *arp.Client
	err := netns.Do(a.netns, func() error {
		ifi, err := net.InterfaceByName(port)
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("garp: %s: %w", port, err)
	}
	a.conns[port] = c
	return c, nil
}

// Announce sends one gratuitous ARP reply per address from port's MAC and returns how many
// went out. A socket that fails is reopened once (its interface may have been recreated).
func (a *Announcer) Announce(port string, addrs ...netip.Addr) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sent := 0
	for try := 0; ; try++ {
		c, err := a.conn(port)
		if err != nil {
			return sent, err
		}
		for _, ip := range addrs[sent:] {
			p, err := arp.NewPacket(arp.OperationReply, c.HardwareAddr(), ip, ethernet.Broadcast, ip)
			if err != nil {
				return sent, fmt.Errorf("garp: %s: %v: %w", port, ip, err)
			}
			if err = c.WriteTo(p, ethernet.Broadcast); err != nil {
				c.Close()
				delete(a.conns, port)
				if try > 0 {
					return sent, fmt.Errorf("garp: %s: %w", port, err)
				}
				break
			}
			sent++
		}
		if sent == len(addrs) {
			return sent, nil
		}
	}
}

// Close closes every socket.
func (a *Announcer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for p, c := range a.conns {
		errs = append(errs, c.Close())
		delete(a.conns, p)
	}
	return errors.Join(errs...)
}
