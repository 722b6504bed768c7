// Command hanode runs one blade's HA core as a plain process (process
// mode): the ha.Blade over UDP on two base interfaces, plus a UDP probe
// responder that answers only while this blade's unit of the probed group
// is active with a valid lease. Tests and the failover bench run it in
// network namespaces (see package ha/procmode).
//
//	hanode -config shelf.yaml -slot 3 -key 00112233... \
//	    -base0 base0=169.254.70.0/24 -base1 base1=169.254.71.0/24 -probe-group mgmt
//
// A member's address on each base network is the network's address plus
// its slot number (slot 3 -> 169.254.70.3). It prints one line per HA state
// change of its units ("state mgmt-3 active") and exits cleanly on SIGTERM
// (graceful hand-over).
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/transport"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hanode:", err)
		os.Exit(1)
	}
}

// basePath parses "iface=network/prefix". With broadcast, the path
// listens on the wildcard address and sends to the network's broadcast
// address (no ARP on the HA path).
func basePath(spec string, port uint16, slot uint8, slots []uint8, broadcast bool) (transport.UDPPath, error) {
	iface, cidr, ok := strings.Cut(spec, "=")
	if !ok {
		return transport.UDPPath{}, fmt.Errorf("base path %q: want iface=network/prefix", spec)
	}
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil || !pfx.Addr().Is4() {
		return transport.UDPPath{}, fmt.Errorf("base path %q: %v", spec, err)
	}
	at := func(s uint8) netip.AddrPort {
		a := pfx.Masked().Addr().As4()
		a[3] += s
		return netip.AddrPortFrom(netip.AddrFrom4(a), port)
	}
	if broadcast {
		a := pfx.Masked().Addr().As4()
		host := ^uint32(0) >> pfx.Bits()
		a[0] |= byte(host >> 24)
		a[1] |= byte(host >> 16)
		a[2] |= byte(host >> 8)
		a[3] |= byte(host)
		return transport.UDPPath{Interface: iface, Local: netip.AddrPortFrom(netip.IPv4Unspecified(), port),
			Broadcast: netip.AddrPortFrom(netip.AddrFrom4(a), port)}, nil
	}
	p := transport.UDPPath{Interface: iface, Local: at(slot), Peers: map[uint8]netip.AddrPort{}}
	for _, s := range slots {
		if s != slot {
			p.Peers[s] = at(s)
		}
	}
	return p, nil
}

func run() error {
	var (
		cfgPath    = flag.String("config", "", "shelf HA configuration (YAML or JSON, amf.Config)")
		slot       = flag.Uint("slot", 0, "this blade's slot")
		keyHex     = flag.String("key", "", "shelf key, hex (at least 16 bytes)")
		base0      = flag.String("base0", "", "base path 0: iface=network/prefix")
		base1      = flag.String("base1", "", "base path 1: iface=network/prefix (optional)")
		port       = flag.Uint("port", 7400, "HA UDP port")
		probePort  = flag.Uint("probe-port", 7500, "UDP probe responder port (0: none)")
		probeGroup = flag.String("probe-group", "mgmt", "group whose active unit answers probes")
		voteFile   = flag.String("vote-file", "", "raft term/vote file (optional)")
		broadcast  = flag.Bool("broadcast", true, "send HA frames to each base network's broadcast address (else unicast to each peer)")
		events     = flag.Bool("events", false, "print every HA event (\"event <unix-ns> <event>\")")
	)
	flag.Parse()
	b, err := os.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	cfg, err := amf.ParseConfig(b)
	if err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	key, err := hex.DecodeString(*keyHex)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if *slot == 0 || *slot > 254 || *port == 0 || *port > 65535 {
		return fmt.Errorf("slot %d port %d out of range", *slot, *port)
	}
	var paths []transport.UDPPath
	for _, spec := range []string{*base0, *base1} {
		if spec == "" {
			continue
		}
		p, err := basePath(spec, uint16(*port), uint8(*slot), cfg.Slots, *broadcast)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	blade, err := ha.Start(ha.Options{Config: cfg, Slot: uint8(*slot), Key: key, Paths: paths, VoteFile: *voteFile})
	if err != nil {
		return err
	}
	if *events {
		// The time printed is the engine's instant of the event (wall clock),
		// not when the line was written.
		// Assignments that ended with their lease carry that instant.
		blade.Events().Subscribe(func(e evt.Event) {
			at := e.At
			if e.Effective != 0 {
				at = e.Effective
			}
			fmt.Printf("event %d %v\n", blade.WallTime(at).UnixNano(), e)
		})
	}
	for _, g := range cfg.Groups {
		for _, u := range g.Units {
			if u.Node != uint8(*slot) {
				continue
			}
			name := u.Name
			blade.Register(amf.Component{Name: name + "-hanode", Unit: name, Assign: func(a amf.Assignment) {
				fmt.Printf("state %s %s\n", name, a.State)
			}})
		}
	}
	if *probePort != 0 {
		pc, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", *probePort))
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		go func() {
			buf := make([]byte, 64)
			reply := []byte(fmt.Sprintf("active %d", *slot))
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				if blade.Active(*probeGroup, "") {
					pc.WriteTo(reply, from)
				}
			}
		}()
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return blade.Close(ctx)
}
