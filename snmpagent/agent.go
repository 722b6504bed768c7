package snmpagent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Clock gives the agent its time; tests inject their own.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// timeWindow is the USM time window (RFC 3414 3.2.7).
const timeWindow = 150

// Config configures an Agent.
type Config struct {
	// EngineID is the authoritative snmpEngineID (5..32 octets); nil
	// generates an RFC 3411 random-format ID.
	EngineID []byte
	// EngineBoots is snmpEngineBoots; the caller persists and increments
	// it across restarts (not across failovers: see State). 0 means 1.
	EngineBoots uint32
	Clock       Clock
	// MaxMessageSize is snmpEngineMaxMessageSize; 0 means 1472, like
	// net-snmp on UDP.
	MaxMessageSize int
	// Workers is the number of goroutines reading the socket (default 2).
	Workers int
	Logger  *slog.Logger
	System  System
}

// Community grants SNMPv1/v2c access (RFC 3584 style, without the
// indirection through VACM groups: the community names its views).
type Community struct {
	Name string
	// View is the VACM view for reads and, when Write, for writes; ""
	// means the whole tree.
	View  string
	Write bool
	// Sources restricts the managers allowed to use the community; empty
	// allows all.
	Sources []netip.Prefix
}

// Agent is an SNMP command responder and notification originator.
type Agent struct {
	clock  Clock
	log    *slog.Logger
	maxMsg int
	tree   *Tree
	vacm   *VACM
	cnt    counters
	sys    *systemGroup
	salt   atomic.Uint64
	setMu  sync.Mutex

	mu          sync.RWMutex
	engineID    []byte
	boots       uint32
	timeBase    time.Time // engineTime = now - timeBase
	upBase      time.Time // sysUpTime = now - upBase
	users       map[string]*usmUser
	communities map[string]*Community
	targets     []Target

	conn    *net.UDPConn
	workers int
	wg      sync.WaitGroup
	closed  atomic.Bool
	notify  *notifier
}

var allView = "\x00all" // the builtin view of the whole tree

// New builds an agent with the SNMPv2-MIB, SNMP-FRAMEWORK-MIB engine
// group, usmStats and MPD stats registered. It does not listen yet.
func New(cfg Config) (*Agent, error) {
	a := &Agent{
		clock:       cfg.Clock,
		log:         cfg.Logger,
		maxMsg:      cfg.MaxMessageSize,
		tree:        NewTree(),
		vacm:        newVACM(),
		users:       map[string]*usmUser{},
		communities: map[string]*Community{},
		workers:     cfg.Workers,
		boots:       cfg.EngineBoots,
	}
	if a.clock == nil {
		a.clock = systemClock{}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.maxMsg == 0 {
		a.maxMsg = 1472
	}
	if a.maxMsg < 484 || a.maxMsg > 65507 {
		return nil, fmt.Errorf("snmpagent: max message size %d outside 484..65507", a.maxMsg)
	}
	if a.workers <= 0 {
		a.workers = 2
	}
	if a.boots == 0 {
		a.boots = 1
	}
	a.engineID = cfg.EngineID
	if a.engineID == nil {
		a.engineID = randomEngineID()
	}
	if len(a.engineID) < 5 || len(a.engineID) > 32 {
		return nil, fmt.Errorf("snmpagent: engine ID of %d octets, want 5..32", len(a.engineID))
	}
	a.engineID = bytes.Clone(a.engineID)
	now := a.clock.Now()
	a.timeBase, a.upBase = now, now
	var s [8]byte
	_, _ = rand.Read(s[:])
	a.salt.Store(binary.BigEndian.Uint64(s[:]))
	_ = a.vacm.AddView(ViewFamily{View: allView, Subtree: OID{0}})
	_ = a.vacm.AddView(ViewFamily{View: allView, Subtree: OID{1}})
	_ = a.vacm.AddView(ViewFamily{View: allView, Subtree: OID{2}})
	if err := a.registerBuiltins(cfg.System); err != nil {
		return nil, err
	}
	a.notify = newNotifier(a)
	return a, nil
}

// randomEngineID returns an RFC 3411 engine ID: enterprise 8072 (the
// net-snmp number is not ours; 0 with the format bit is reserved), so we
// use enterprise 0 with format 5 (octets, administratively assigned).
func randomEngineID() []byte {
	id := []byte{0x80, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0}
	_, _ = rand.Read(id[5:])
	return id
}

// Tree returns the MIB tree for modules to register in.
func (a *Agent) Tree() *Tree { return a.tree }

// VACM returns the view-based access control tables.
func (a *Agent) VACM() *VACM { return a.vacm }

// EngineID returns snmpEngineID.
func (a *Agent) EngineID() []byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return bytes.Clone(a.engineID)
}

// Counters returns a snapshot of the statistics.
func (a *Agent) Counters() Counters { return a.cnt.snapshot() }

// engineTime returns snmpEngineBoots and snmpEngineTime now.
func (a *Agent) engineTime() (boots, t uint32) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	d := a.clock.Now().Sub(a.timeBase)
	if d < 0 {
		d = 0
	}
	return a.boots, uint32(min(d/time.Second, 1<<31-1))
}

// upTime returns sysUpTime in hundredths of a second.
func (a *Agent) upTime() uint32 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	d := a.clock.Now().Sub(a.upBase)
	if d < 0 {
		return 0
	}
	return uint32(d / (10 * time.Millisecond))
}

// AddCommunity adds or replaces a community.
func (a *Agent) AddCommunity(c Community) error {
	if c.Name == "" || len(c.Name) > 127 {
		return fmt.Errorf("snmpagent: community name must be 1..127 octets")
	}
	if c.View != "" && a.vacm.View(c.View) == nil {
		return fmt.Errorf("snmpagent: community %q: unknown view %q", c.Name, c.View)
	}
	c.Sources = append([]netip.Prefix(nil), c.Sources...)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.communities[c.Name] = &c
	return nil
}

// RemoveCommunity deletes a community.
func (a *Agent) RemoveCommunity(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.communities, name)
}

// AddUser adds or replaces a USM user, localizing its keys.
func (a *Agent) AddUser(u User) error {
	a.mu.Lock()
	uu, err := localize(u, a.engineID)
	if err == nil {
		a.users[u.Name] = uu
	}
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if u.Group != "" {
		return a.vacm.AddGroupMember(GroupMember{Model: ModelUSM, SecurityName: u.Name, Group: u.Group})
	}
	return nil
}

// RemoveUser deletes a USM user and its VACM group membership.
func (a *Agent) RemoveUser(name string) {
	a.mu.Lock()
	delete(a.users, name)
	a.mu.Unlock()
	a.vacm.RemoveGroupMember(ModelUSM, name)
}

// Start binds the UDP socket at addr (e.g. "127.0.0.1:0") and serves
// until Close or ctx ends.
func (a *Agent) Start(ctx context.Context, addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("snmpagent: listen %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("snmpagent: listen %s: %w", addr, err)
	}
	// Bursts from managers (bulk walks, load) should queue, not drop.
	_ = conn.SetReadBuffer(4 << 20)
	a.conn = conn
	for i := 0; i < a.workers; i++ {
		a.wg.Add(1)
		go a.serve()
	}
	if err := a.notify.start(); err != nil {
		a.Close()
		return err
	}
	go func() {
		<-ctx.Done()
		a.Close()
	}()
	return nil
}

// Addr returns the bound address.
func (a *Agent) Addr() netip.AddrPort {
	if a.conn == nil {
		return netip.AddrPort{}
	}
	return a.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close stops serving and waits for the workers.
func (a *Agent) Close() error {
	if a.closed.Swap(true) {
		return nil
	}
	var err error
	if a.conn != nil {
		err = a.conn.Close()
	}
	a.notify.close()
	a.wg.Wait()
	return err
}

// batch is how many datagrams one system call may carry (recvmmsg and
// sendmmsg): under load, requests queue up and are taken together.
const batch = 8

type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func (a *Agent) serve() {
	defer a.wg.Done()
	var bc batchConn = ipv4.NewPacketConn(a.conn)
	if a.Addr().Addr().Is6() && !a.Addr().Addr().Is4In6() {
		bc = ipv6.NewPacketConn(a.conn)
	}
	in := make([]ipv4.Message, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 65536)}
	}
	out := make([]ipv4.Message, 0, batch)
	resps := make([]Response, 0, batch)
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if a.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			a.log.Warn("snmpagent: read", "err", err)
			continue
		}
		out, resps = out[:0], resps[:0]
		for i := 0; i < n; i++ {
			ua, ok := in[i].Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			resp := a.HandleMessage(in[i].Buffers[0][:in[i].N], ua.AddrPort())
			if resp.Data != nil {
				out = append(out, ipv4.Message{Buffers: [][]byte{resp.Data}, Addr: ua})
				resps = append(resps, resp)
			}
		}
		for len(out) > 0 {
			k, err := bc.WriteBatch(out, 0)
			if err != nil {
				a.log.Warn("snmpagent: write", "err", err)
				break
			}
			for _, r := range resps[:k] {
				a.Sent(r)
			}
			out, resps = out[k:], resps[k:]
		}
	}
}

// Response is what HandleMessage asks to send back: Data is the datagram
// (nil: send nothing). The agent counts a response in snmpOutPkts and the
// related out counters (snmpOutGetResponses, snmpOutTooBigs, ...) only
// once the caller reports it sent with Sent: a response held back (e.g.
// until its state is checkpointed) and then dropped was never output.
type Response struct {
	Data   []byte
	pdu    gosnmp.PDUType
	status gosnmp.SNMPError
}

// errTooBig is a response that does not fit even as a tooBig error.
var errTooBig = errors.New("snmpagent: response exceeds the message size limit")

// Sent counts r as output: snmpOutPkts, and for a Response-PDU
// snmpOutGetResponses and the counter of its error-status (RFC 3418
// snmpOutTooBigs, snmpOutNoSuchNames, snmpOutBadValues, snmpOutGenErrs).
// Call it once per datagram actually written.
func (a *Agent) Sent(r Response) {
	if r.Data == nil {
		return
	}
	a.cnt.OutPkts.Add(1)
	if r.pdu != gosnmp.GetResponse {
		return // Report-PDUs count in snmpOutPkts only
	}
	a.cnt.OutGetResponses.Add(1)
	switch r.status {
	case gosnmp.TooBig:
		a.cnt.OutTooBigs.Add(1)
	case gosnmp.NoSuchName:
		a.cnt.OutNoSuchNames.Add(1)
	case gosnmp.BadValue:
		a.cnt.OutBadValues.Add(1)
	case gosnmp.GenErr:
		a.cnt.OutGenErrs.Add(1)
	}
}

// HandleMessage processes one request datagram and returns the response
// to send back (Data nil: send nothing); report it with Sent once it is
// written. msg is modified (decryption and digest checks work in place).
// It never panics on bad input.
func (a *Agent) HandleMessage(msg []byte, from netip.AddrPort) Response {
	a.cnt.InPkts.Add(1)
	h, err := peekHeader(msg)
	if err != nil {
		a.cnt.InASNParseErrs.Add(1)
		return Response{}
	}
	switch h.version {
	case 0, 1:
		return a.handleCommunity(msg, from, gosnmp.SnmpVersion(h.version))
	case 3:
		return a.handleV3(msg, &h)
	}
	a.cnt.InBadVersions.Add(1)
	return Response{}
}

// request is a decoded, authorized request with what the response needs.
type request struct {
	version gosnmp.SnmpVersion
	pkt     *gosnmp.SnmpPacket
	read    *View
	write   *View
	// response framing
	community string
	user      *usmUser
	flags     gosnmp.SnmpV3MsgFlags
	maxSize   int
	allow     func(OID, Value) bool // view filter for walks, made once
}

func (a *Agent) handleCommunity(msg []byte, from netip.AddrPort, v gosnmp.SnmpVersion) Response {
	dec := gosnmp.GoSNMP{Version: v}
	pkt, err := dec.SnmpDecodePacket(msg)
	if err != nil {
		a.cnt.InASNParseErrs.Add(1)
		return Response{}
	}
	a.mu.RLock()
	c := a.communities[pkt.Community]
	a.mu.RUnlock()
	if c == nil || !sourceAllowed(c.Sources, from.Addr()) {
		a.cnt.InBadCommunityNames.Add(1)
		a.authFailure()
		return Response{}
	}
	switch pkt.PDUType {
	case gosnmp.GetRequest, gosnmp.GetNextRequest, gosnmp.SetRequest:
	case gosnmp.GetBulkRequest:
		if v == gosnmp.Version1 {
			a.cnt.InASNParseErrs.Add(1)
			return Response{}
		}
	default:
		a.cnt.UnknownPDUHandlers.Add(1)
		return Response{}
	}
	view := c.View
	if view == "" {
		view = allView
	}
	r := &request{version: v, pkt: pkt, community: c.Name, maxSize: a.maxMsg, read: a.vacm.View(view)}
	if c.Write {
		r.write = r.read
	} else if pkt.PDUType == gosnmp.SetRequest {
		a.cnt.InBadCommunityUses.Add(1)
	}
	return a.respond(r)
}

func sourceAllowed(ps []netip.Prefix, addr netip.Addr) bool {
	if len(ps) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// USM report OIDs (RFC 3414 usmStats, RFC 3412, RFC 3415).
var (
	oidUsmStats          = MustOID("1.3.6.1.6.3.15.1.1")
	oidUnsupportedLevels = oidUsmStats.Append(1, 0)
	oidNotInTimeWindows  = oidUsmStats.Append(2, 0)
	oidUnknownUserNames  = oidUsmStats.Append(3, 0)
	oidUnknownEngineIDs  = oidUsmStats.Append(4, 0)
	oidWrongDigests      = oidUsmStats.Append(5, 0)
	oidDecryptionErrors  = oidUsmStats.Append(6, 0)
	oidMPDStats          = MustOID("1.3.6.1.6.3.11.2.1")
	oidUnknownPDUHandler = oidMPDStats.Append(3, 0)
	oidUnknownContexts   = MustOID("1.3.6.1.6.3.12.1.5.0")
)

func (a *Agent) handleV3(msg []byte, h *msgHeader) Response {
	if h.model != 3 {
		a.cnt.UnknownSecurityModels.Add(1)
		return Response{}
	}
	flags := gosnmp.SnmpV3MsgFlags(h.flags)
	if flags&gosnmp.AuthPriv == 2 { // privacy without authentication
		a.cnt.InvalidMsgs.Add(1)
		return Response{}
	}
	level := levelOf(flags)
	a.mu.RLock()
	engineID := a.engineID
	u := a.users[string(h.user)]
	a.mu.RUnlock()
	boots, now := a.engineTime()

	// RFC 3414 3.2 steps 3-8, in order.
	if !bytes.Equal(h.engineID, engineID) {
		a.cnt.UsmUnknownEngineIDs.Add(1)
		return a.report(msg, h, nil, oidUnknownEngineIDs, a.cnt.UsmUnknownEngineIDs.Load())
	}
	if u == nil {
		a.cnt.UsmUnknownUserNames.Add(1)
		return a.report(msg, h, nil, oidUnknownUserNames, a.cnt.UsmUnknownUserNames.Load())
	}
	if (level >= AuthNoPriv && !u.hasAuth()) || (level == AuthPriv && !u.hasPriv()) {
		a.cnt.UsmUnsupportedSecLevels.Add(1)
		return a.report(msg, h, nil, oidUnsupportedLevels, a.cnt.UsmUnsupportedSecLevels.Load())
	}
	if level >= AuthNoPriv {
		if !u.verifyDigest(msg, h) {
			a.cnt.UsmWrongDigests.Add(1)
			a.authFailure()
			return a.report(msg, h, nil, oidWrongDigests, a.cnt.UsmWrongDigests.Load())
		}
		diff := h.time - int64(now)
		if boots == 1<<31-1 || h.boots != int64(boots) || diff > timeWindow || diff < -timeWindow {
			a.cnt.UsmNotInTimeWindows.Add(1)
			// Authenticated, so the manager can trust our boots and time.
			return a.report(msg, h, u, oidNotInTimeWindows, a.cnt.UsmNotInTimeWindows.Load())
		}
	}
	if level == AuthPriv && len(h.privPar) != 8 {
		a.cnt.UsmDecryptionErrors.Add(1)
		return a.report(msg, h, nil, oidDecryptionErrors, a.cnt.UsmDecryptionErrors.Load())
	}
	pkt, fast, err := a.scopedPDU(msg, h, u, level == AuthPriv)
	if !fast {
		dec := gosnmp.GoSNMP{
			Version:            gosnmp.Version3,
			SecurityModel:      gosnmp.UserSecurityModel,
			MsgFlags:           flags,
			SecurityParameters: u.params(engineID, boots, now),
		}
		pkt, err = dec.SnmpDecodePacket(msg)
	}
	if err != nil {
		if level == AuthPriv {
			a.cnt.UsmDecryptionErrors.Add(1)
			return a.report(msg, h, nil, oidDecryptionErrors, a.cnt.UsmDecryptionErrors.Load())
		}
		a.cnt.InASNParseErrs.Add(1)
		return Response{}
	}
	r := &request{version: gosnmp.Version3, pkt: pkt, user: u, flags: flags & gosnmp.AuthPriv,
		maxSize: min(a.maxMsg, int(max(h.maxSize, 484)))}
	switch pkt.PDUType {
	case gosnmp.GetRequest, gosnmp.GetNextRequest, gosnmp.SetRequest, gosnmp.GetBulkRequest:
	default:
		a.cnt.UnknownPDUHandlers.Add(1)
		return Response{}
	}
	if pkt.ContextEngineID != "" && pkt.ContextEngineID != string(engineID) {
		a.cnt.UnknownPDUHandlers.Add(1)
		return a.report(msg, h, u, oidUnknownPDUHandler, a.cnt.UnknownPDUHandlers.Load())
	}
	if pkt.ContextName != "" {
		a.cnt.UnknownContexts.Add(1)
		return a.report(msg, h, u, oidUnknownContexts, a.cnt.UnknownContexts.Load())
	}
	read, write, _, ok := a.vacm.resolve(ModelUSM, u.Name, level)
	if !ok {
		return a.encodeResponse(r, gosnmp.AuthorizationError, 0, pkt.Variables)
	}
	r.read, r.write = read, write
	return a.respond(r)
}

// report builds a Report PDU for a refused v3 message, if the message is
// reportable. With u set the report is authenticated (authNoPriv).
func (a *Agent) report(msg []byte, h *msgHeader, u *usmUser, oid OID, count uint64) Response {
	if h.flags&byte(gosnmp.Reportable) == 0 {
		return Response{}
	}
	boots, now := a.engineTime()
	a.mu.RLock()
	engineID := a.engineID
	a.mu.RUnlock()
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    string(engineID),
		AuthoritativeEngineBoots: boots,
		AuthoritativeEngineTime:  now,
		UserName:                 string(h.user),
		AuthenticationProtocol:   gosnmp.NoAuth,
		PrivacyProtocol:          gosnmp.NoPriv,
	}
	flags := gosnmp.NoAuthNoPriv
	if u != nil && u.hasAuth() {
		sp = u.params(engineID, boots, now)
		flags = gosnmp.AuthNoPriv
	}
	if len(sp.UserName) > 32 {
		sp.UserName = ""
	}
	pkt := &gosnmp.SnmpPacket{
		Version:            gosnmp.Version3,
		MsgFlags:           flags,
		SecurityModel:      gosnmp.UserSecurityModel,
		SecurityParameters: sp,
		ContextEngineID:    string(engineID),
		PDUType:            gosnmp.Report,
		MsgID:              uint32(h.msgID),
		MsgMaxSize:         uint32(a.maxMsg),
		RequestID:          plainRequestID(msg, h),
		Variables:          []gosnmp.SnmpPDU{{Name: oid.String(), Type: gosnmp.Counter32, Value: uint32(count)}},
	}
	out, err := pkt.MarshalMsg()
	if err != nil {
		a.log.Warn("snmpagent: marshal report", "err", err)
		return Response{}
	}
	return Response{Data: out, pdu: gosnmp.Report}
}

// plainRequestID reads the request-id of an unencrypted scoped PDU, or 0
// (RFC 3412 7.1.3 lets a report carry 0 when the PDU cannot be read).
func plainRequestID(msg []byte, h *msgHeader) uint32 {
	tag, s, _, err := tlv(msg, h.data)
	if err != nil || tag != 0x30 {
		return 0
	}
	for i := 0; i < 2; i++ { // contextEngineID, contextName
		if _, _, e, err := tlv(msg, s); err == nil {
			s = e
		} else {
			return 0
		}
	}
	if _, ps, _, err := tlv(msg, s); err == nil {
		if t, is, ie, err := tlv(msg, ps); err == nil && t == 0x02 {
			if v, err := berUint(msg[is:ie]); err == nil {
				return uint32(v)
			}
		}
	}
	return 0
}

// respond processes an authorized request and encodes the response.
func (a *Agent) respond(r *request) Response {
	pkt := r.pkt
	var (
		vbs    []gosnmp.SnmpPDU
		status gosnmp.SNMPError
		index  int
	)
	switch pkt.PDUType {
	case gosnmp.GetRequest:
		a.cnt.InGetRequests.Add(1)
		vbs, status, index = a.get(r)
	case gosnmp.GetNextRequest:
		a.cnt.InGetNexts.Add(1)
		vbs, status, index = a.getNext(r)
	case gosnmp.GetBulkRequest:
		a.cnt.InGetBulks.Add(1)
		return a.getBulk(r)
	case gosnmp.SetRequest:
		a.cnt.InSetRequests.Add(1)
		vbs, status, index = a.set(r)
	}
	if status != gosnmp.NoError {
		if r.version == gosnmp.Version1 {
			status = v1Status(status)
		}
		vbs = pkt.Variables // RFC 3416: on error, the request's varbinds
	}
	return a.encodeResponse(r, status, index, vbs)
}

// encodeResponse marshals a Response PDU with gosnmp's codec, falling back
// to tooBig when it exceeds the size limit (RFC 3416 4.2.1).
func (a *Agent) encodeResponse(r *request, status gosnmp.SNMPError, index int, vbs []gosnmp.SnmpPDU) Response {
	out, err := a.marshal(r, status, index, vbs)
	if err != nil {
		a.log.Warn("snmpagent: marshal response", "err", err)
		status, index = gosnmp.GenErr, 0
		if r.version == gosnmp.Version1 {
			status = v1Status(status)
		}
		vbs = r.pkt.Variables
		out, err = a.marshal(r, status, index, vbs)
	}
	if err == nil && len(out) > r.maxSize {
		status = gosnmp.TooBig
		if r.version == gosnmp.Version1 {
			status = v1Status(status)
		}
		out, err = a.marshal(r, status, 0, nil)
	}
	if err == nil && len(out) > r.maxSize {
		err = errTooBig
	}
	if err != nil {
		a.cnt.SilentDrops.Add(1)
		return Response{}
	}
	return Response{Data: out, pdu: gosnmp.GetResponse, status: status}
}

func (a *Agent) marshal(r *request, status gosnmp.SNMPError, index int, vbs []gosnmp.SnmpPDU) ([]byte, error) {
	pkt := &gosnmp.SnmpPacket{
		Version:    r.version,
		Community:  r.community,
		PDUType:    gosnmp.GetResponse,
		RequestID:  r.pkt.RequestID,
		Error:      status,
		ErrorIndex: uint8(min(index, 255)), // gosnmp limits the index to a byte
		Variables:  vbs,
	}
	// The PDU by the agent's own encoder (ber.go), gosnmp's for values it does not know.
	pdu, native := appendResponsePDU(nil, r.pkt.RequestID, status, min(index, 255), vbs)
	if native && r.version != gosnmp.Version3 {
		return appendCommunityMessage(make([]byte, 0, len(pdu)+len(r.community)+12), r.version, r.community, pdu), nil
	}
	if r.version == gosnmp.Version3 && (r.flags != gosnmp.AuthPriv || r.user.privBlock != nil) {
		// The v3 envelope and USM ourselves.
		if !native {
			pkt.Version, pkt.Community = gosnmp.Version2c, ""
			v2, err := pkt.MarshalMsg()
			if err != nil {
				return nil, err
			}
			if pdu, err = v2cPDU(v2); err != nil {
				return nil, err
			}
		}
		boots, now := a.engineTime()
		a.mu.RLock()
		engineID := a.engineID
		a.mu.RUnlock()
		return a.marshalV3Response(r, pdu, engineID, boots, now), nil
	}
	if r.version == gosnmp.Version3 {
		boots, now := a.engineTime()
		a.mu.RLock()
		engineID := a.engineID
		a.mu.RUnlock()
		sp := r.user.params(engineID, boots, now)
		if r.flags == gosnmp.AuthPriv {
			sp.PrivacyParameters = binary.BigEndian.AppendUint64(nil, a.salt.Add(1))
		}
		pkt.MsgFlags = r.flags
		pkt.SecurityModel = gosnmp.UserSecurityModel
		pkt.SecurityParameters = sp
		pkt.ContextEngineID = string(engineID)
		pkt.ContextName = r.pkt.ContextName
		pkt.MsgID = r.pkt.MsgID
		pkt.MsgMaxSize = uint32(a.maxMsg)
	}
	return pkt.MarshalMsg()
}

// v1Status maps SNMPv2 error-status values to SNMPv1 (RFC 3584 4.4).
func v1Status(s gosnmp.SNMPError) gosnmp.SNMPError {
	switch s {
	case gosnmp.NoError, gosnmp.TooBig, gosnmp.NoSuchName, gosnmp.BadValue, gosnmp.ReadOnly, gosnmp.GenErr:
		return s
	case gosnmp.WrongValue, gosnmp.WrongEncoding, gosnmp.WrongType, gosnmp.WrongLength, gosnmp.InconsistentValue:
		return gosnmp.BadValue
	case gosnmp.NoAccess, gosnmp.NotWritable, gosnmp.NoCreation, gosnmp.InconsistentName, gosnmp.AuthorizationError:
		return gosnmp.NoSuchName
	}
	return gosnmp.GenErr // resourceUnavailable, commitFailed, undoFailed
}
