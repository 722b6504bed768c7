package snmpagent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Target is a notification destination (SNMP-TARGET-MIB in short).
type Target struct {
	Name string
	Addr netip.AddrPort
	// Version is gosnmp.Version2c or gosnmp.Version3.
	Version   gosnmp.SnmpVersion
	Community string // v2c
	// User names the USM user (keys localized to this agent's engine ID,
	// as the sender of a trap is authoritative) and Level its level (v3).
	User  string
	Level SecurityLevel
	// Inform asks for an acknowledged InformRequest (v2c only).
	Inform  bool
	Timeout time.Duration // per attempt, default 1 s
	Retries int           // default 3
}

// Varbind is one variable binding of a notification.
type Varbind struct {
	OID   OID
	Value Value
}

// AddTarget adds or replaces (by Name) a notification target.
func (a *Agent) AddTarget(t Target) error {
	switch {
	case t.Name == "" || !t.Addr.IsValid():
		return fmt.Errorf("snmpagent: target %q: name and address required", t.Name)
	case t.Version == gosnmp.Version2c && t.Community == "":
		return fmt.Errorf("snmpagent: target %q: v2c needs a community", t.Name)
	case t.Version == gosnmp.Version3 && t.Inform:
		return fmt.Errorf("snmpagent: target %q: v3 informs are not supported", t.Name)
	case t.Version != gosnmp.Version2c && t.Version != gosnmp.Version3:
		return fmt.Errorf("snmpagent: target %q: version %v not supported", t.Name, t.Version)
	}
	if t.Version == gosnmp.Version3 {
		if t.Level == 0 {
			t.Level = AuthPriv
		}
		a.mu.RLock()
		u := a.users[t.User]
		a.mu.RUnlock()
		if u == nil {
			return fmt.Errorf("snmpagent: target %q: unknown user %q", t.Name, t.User)
		}
		if (t.Level >= AuthNoPriv && !u.hasAuth()) || (t.Level == AuthPriv && !u.hasPriv()) {
			return fmt.Errorf("snmpagent: target %q: user %q cannot do level %d", t.Name, t.User, t.Level)
		}
	}
	if t.Timeout <= 0 {
		t.Timeout = time.Second
	}
	if t.Retries <= 0 {
		t.Retries = 3
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.targets {
		if a.targets[i].Name == t.Name {
			a.targets[i] = t
			return nil
		}
	}
	a.targets = append(a.targets, t)
	return nil
}

// notifier owns the socket notifications leave from and matches inform
// responses to their requests.
type notifier struct {
	a       *Agent
	conn    *net.UDPConn
	reqID   atomic.Uint32
	mu      sync.Mutex
	pending map[uint32]chan netip.AddrPort
	wg      sync.WaitGroup
	closed  atomic.Bool
}

func newNotifier(a *Agent) *notifier {
	n := &notifier{a: a, pending: map[uint32]chan netip.AddrPort{}}
	var b [4]byte
	_, _ = rand.Read(b[:])
	n.reqID.Store(binary.BigEndian.Uint32(b[:]) & 0x3fffffff)
	return n
}

func (n *notifier) start() error {
	ip := n.a.Addr().Addr()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return fmt.Errorf("snmpagent: notification socket: %w", err)
	}
	n.conn = conn
	n.wg.Add(1)
	go n.read()
	return nil
}

func (n *notifier) close() {
	if n.closed.Swap(true) || n.conn == nil {
		return
	}
	n.conn.Close()
	n.wg.Wait()
}

func (n *notifier) read() {
	defer n.wg.Done()
	buf := make([]byte, 65536)
	for {
		l, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if n.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		dec := gosnmp.GoSNMP{Version: gosnmp.Version2c}
		pkt, err := dec.SnmpDecodePacket(buf[:l])
		if err != nil || pkt.PDUType != gosnmp.GetResponse {
			n.a.cnt.InASNParseErrs.Add(1)
			continue
		}
		n.mu.Lock()
		ch := n.pending[pkt.RequestID]
		n.mu.Unlock()
		if ch != nil {
			select {
			case ch <- from:
			default:
			}
		}
	}
}

// Notify sends the notification trapOID with sysUpTime.0, snmpTrapOID.0
// and vbs to every target. It returns after traps are sent and informs
// are acknowledged or have run out of retries; errors name the targets.
func (a *Agent) Notify(ctx context.Context, trapOID OID, vbs ...Varbind) error {
	if a.notify.conn == nil {
		return errors.New("snmpagent: notify: agent not started")
	}
	pdus := make([]gosnmp.SnmpPDU, 0, len(vbs)+2)
	pdus = append(pdus, toPDU(OIDSysUpTime, TimeTicks(a.upTime())), toPDU(OIDSnmpTrapOID, ObjectIdentifier(trapOID)))
	for _, vb := range vbs {
		pdus = append(pdus, toPDU(vb.OID, vb.Value))
	}
	a.mu.RLock()
	targets := append([]Target(nil), a.targets...)
	a.mu.RUnlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.notify.send(ctx, t, pdus); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("snmpagent: notify %s (%v): %w", t.Name, t.Addr, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *notifier) send(ctx context.Context, t Target, pdus []gosnmp.SnmpPDU) error {
	a := n.a
	id := n.reqID.Add(1) & 0x7fffffff
	pkt := &gosnmp.SnmpPacket{
		Version:   t.Version,
		Community: t.Community,
		PDUType:   gosnmp.SNMPv2Trap,
		RequestID: id,
		Variables: pdus,
	}
	if t.Inform {
		pkt.PDUType = gosnmp.InformRequest
	}
	if t.Version == gosnmp.Version3 {
		a.mu.RLock()
		u := a.users[t.User]
		engineID := a.engineID
		a.mu.RUnlock()
		if u == nil {
			return fmt.Errorf("unknown user %q", t.User)
		}
		boots, now := a.engineTime()
		sp := u.params(engineID, boots, now)
		flags := gosnmp.NoAuthNoPriv
		switch t.Level {
		case AuthPriv:
			flags = gosnmp.AuthPriv
			sp.PrivacyParameters = binary.BigEndian.AppendUint64(nil, a.salt.Add(1))
		case AuthNoPriv:
			flags = gosnmp.AuthNoPriv
		}
		pkt.MsgFlags = flags
		pkt.SecurityModel = gosnmp.UserSecurityModel
		pkt.SecurityParameters = sp
		pkt.ContextEngineID = string(engineID)
		pkt.MsgID = id
		pkt.MsgMaxSize = uint32(a.maxMsg)
	}
	out, err := pkt.MarshalMsg()
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	to := net.UDPAddrFromAddrPort(t.Addr)
	if !t.Inform {
		if _, err := n.conn.WriteToUDP(out, to); err != nil {
			return err
		}
		a.cnt.OutTraps.Add(1)
		a.cnt.OutPkts.Add(1)
		return nil
	}
	ch := make(chan netip.AddrPort, 1)
	n.mu.Lock()
	n.pending[id] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.pending, id)
		n.mu.Unlock()
	}()
	for attempt := 0; attempt <= t.Retries; attempt++ {
		if _, err := n.conn.WriteToUDP(out, to); err != nil {
			return err
		}
		a.cnt.OutInforms.Add(1)
		a.cnt.OutPkts.Add(1)
		timer := time.NewTimer(t.Timeout)
	wait:
		for {
			select {
			case from := <-ch:
				if from.Addr().Unmap() == t.Addr.Addr().Unmap() && from.Port() == t.Addr.Port() {
					timer.Stop()
					return nil
				}
			case <-timer.C:
				break wait
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			}
		}
	}
	a.cnt.InformTimeouts.Add(1)
	return fmt.Errorf("inform not acknowledged after %d attempts", t.Retries+1)
}

// authFailure sends authenticationFailure when snmpEnableAuthenTraps is
// enabled(1).
func (a *Agent) authFailure() {
	if a.sys.enableAuthenTraps.Load() {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = a.Notify(ctx, OIDAuthFailure)
		}()
	}
}
