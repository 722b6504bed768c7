package farend

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// Prober is a host on the shelf's core network, behind an uplink far end: it resolves the
// management address with ARP (and follows gratuitous ARPs when the address moves), sends a
// UDP probe to it every interval, and records every answer with the time it arrived. It
// answers ARP requests for its own address, as any host must.
type Prober struct {
	ep     *Endpoint
	mac    net.HardwareAddr
	ip     netip.Addr
	target netip.AddrPort

	mu        sync.Mutex
	targetMAC net.HardwareAddr
	answers   []Answer
	moves     []Move
	sent      uint64
	id        uint16
}

// Answer is one probe answer.
type Answer struct {
	At   time.Time
	Text string // the responder's answer, e.g. "active 3"
	From net.HardwareAddr
}

// Move is the prober following the target address to another MAC: when the ARP (a reply,
// or a gratuitous ARP after a takeover) that told it arrived.
type Move struct {
	At time.Time
	To net.HardwareAddr
}

// NewProber attaches a prober with address ip to ep (its handler is replaced).
func NewProber(ep *Endpoint, mac net.HardwareAddr, ip netip.Addr, target netip.AddrPort) *Prober {
	p := &Prober{ep: ep, mac: mac, ip: ip, target: target}
	ep.SetHandler(p.receive)
	return p
}

// Run probes every interval until ctx ends. While the target's MAC is unknown it sends an ARP
// request instead of a probe.
func (p *Prober) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		dst := p.targetMAC
		p.id++
		id := p.id
		p.mu.Unlock()
		var f []byte
		var err error
		if dst == nil {
			f, err = p.arpFrame(arp.OperationRequest, ethernet.Broadcast, ethernet.Broadcast, p.target.Addr())
		} else {
			f, err = p.udpFrame(dst, id)
		}
		if err == nil && p.ep.Send(f) == nil {
			p.mu.Lock()
			p.sent++
			p.mu.Unlock()
		}
	}
}

// Answers returns the answers so far, oldest first.
func (p *Prober) Answers() []Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Answer(nil), p.answers...)
}

// Moves returns the times the prober followed the target address to another MAC, oldest
// first.
func (p *Prober) Moves() []Move {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Move(nil), p.moves...)
}

// Last is the latest answer (zero when none).
func (p *Prober) Last() Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.answers) == 0 {
		return Answer{}
	}
	return p.answers[len(p.answers)-1]
}

// Gap is the longest time without an answer between from and to: the outage a client of the
// management address saw. It is an error if no answer came after to.
func Gap(answers []Answer, from, to time.Time) (time.Duration, error) {
	last := from
	var gap time.Duration
	for _, a := range answers {
		if a.At.Before(from) {
			continue
		}
		gap = max(gap, a.At.Sub(last))
		last = a.At
		if a.At.After(to) {
			return gap, nil
		}
	}
	return gap, errors.New("farend: no answer after the interval")
}

func (p *Prober) receive(frame []byte) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		return
	}
	switch f.EtherType {
	case ethernet.EtherTypeARP:
		var a arp.Packet
		if err := a.UnmarshalBinary(f.Payload); err != nil {
			return
		}
		if a.SenderIP == p.target.Addr() {
			// A reply, or a gratuitous ARP after a takeover: follow the address.
			p.mu.Lock()
			if !bytes.Equal(p.targetMAC, a.SenderHardwareAddr) {
				p.targetMAC = append(net.HardwareAddr(nil), a.SenderHardwareAddr...)
				p.moves = append(p.moves, Move{At: time.Now(), To: p.targetMAC})
			}
			p.mu.Unlock()
		}
		if a.Operation == arp.OperationRequest && a.TargetIP == p.ip {
			if r, err := p.arpFrame(arp.OperationReply, a.SenderHardwareAddr, a.SenderHardwareAddr, a.SenderIP); err == nil {
				p.ep.Send(r)
			}
		}
	case ethernet.EtherTypeIPv4:
		text, ok := p.parseUDP(f.Payload)
		if !ok {
			return
		}
		p.mu.Lock()
		p.answers = append(p.answers, Answer{At: time.Now(), Text: text, From: append(net.HardwareAddr(nil), f.Source...)})
		p.mu.Unlock()
	}
}

func (p *Prober) arpFrame(op arp.Operation, dst, targetMAC net.HardwareAddr, targetIP netip.Addr) ([]byte, error) {
	a, err := arp.NewPacket(op, p.mac, p.ip, targetMAC, targetIP)
	if err != nil {
		return nil, err
	}
	pb, err := a.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return (&ethernet.Frame{Destination: dst, Source: p.mac, EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
}

const probeSrcPort = 40000

// udpFrame builds an Ethernet/IPv4/UDP probe to the target.
func (p *Prober) udpFrame(dst net.HardwareAddr, id uint16) ([]byte, error) {
	payload := []byte(fmt.Sprintf("probe %d", id))
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], probeSrcPort)
	binary.BigEndian.PutUint16(udp[2:], p.target.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload) // checksum 0: none, allowed over IPv4
	ip := make([]byte, 20+len(udp))
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:], id)
	src, tgt := p.ip.As4(), p.target.Addr().As4()
	copy(ip[12:], src[:])
	copy(ip[16:], tgt[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:20]))
	copy(ip[20:], udp)
	return (&ethernet.Frame{Destination: dst, Source: p.mac, EtherType: ethernet.EtherTypeIPv4, Payload: ip}).MarshalBinary()
}

// parseUDP returns the payload of a UDP datagram from the target to the prober.
func (p *Prober) parseUDP(b []byte) (string, bool) {
	if len(b) < 28 || b[0]>>4 != 4 || b[9] != 17 {
		return "", false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total > len(b) || total < ihl+8 {
		return "", false
	}
	src, _ := netip.AddrFromSlice(b[12:16])
	dst, _ := netip.AddrFromSlice(b[16:20])
	u := b[ihl:total]
	if src != p.target.Addr() || dst != p.ip || binary.BigEndian.Uint16(u[0:]) != p.target.Port() || binary.BigEndian.Uint16(u[2:]) != probeSrcPort {
		return "", false
	}
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < 8 || ulen > len(u) {
		return "", false
	}
	return string(u[8:ulen]), true
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
