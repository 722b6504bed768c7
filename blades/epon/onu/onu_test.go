package onu

import (
	"errors"
	"net"
	"testing"

	"github.com/cgoa/cgoa/netstack/mpcp"
	"github.com/cgoa/cgoa/netstack/oam"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

type fakeClock struct{ t int64 }

func (c *fakeClock) Now() int64 { return c.t }

type txRec struct {
	llid  uint16
	frame []byte
	at    int64
}

type fakeTx struct{ sent []txRec }

func (f *fakeTx) Transmit(llid uint16, frame []byte, at int64) {
	f.sent = append(f.sent, txRec{llid, frame, at})
}

var (
	oltAddr = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	myAddr  = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

func mpcpFrame(t *testing.T, dst net.HardwareAddr, ts uint32, m mpcp.Message) []byte {
	t.Helper()
	b, err := (&mpcp.Frame{Destination: dst, Source: oltAddr, Timestamp: ts, Message: m}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, b []byte) mpcp.Message {
	t.Helper()
	var f mpcp.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatalf("ONU sent an undecodable MPCPDU: %v", err)
	}
	return f.Message
}

// register takes a fresh ONU through discovery with its raw clock at
// offset 1000 from the OLT's.
func register(t *testing.T, cfg Config) (*ONU, *fakeClock, *fakeTx) {
	t.Helper()
	clk, tx := &fakeClock{t: 1000}, &fakeTx{}
	cfg.MAC = myAddr
	o, err := New(cfg, clk, tx)
	if err != nil {
		t.Fatal(err)
	}
	o.PowerOn()
	// Discovery GATE at OLT time 0 for a window at 500..1500.
	o.Receive(ponlink.BroadcastLLID, true, mpcpFrame(t, mpcp.MACControlAddr, 0, &mpcp.Gate{Discovery: true, SyncTime: 32, Grants: []mpcp.Grant{{Start: 500, Length: 1000}}}), clk.t)
	if o.State() != Registering {
		t.Fatalf("after discovery GATE: state %v, want registering", o.State())
	}
	clk.t = 1000 + 1500
	o.Tick()
	if len(tx.sent) != 1 {
		t.Fatalf("sent %d frames in the discovery window, want 1 REGISTER_REQ", len(tx.sent))
	}
	req := tx.sent[0]
	if _, ok := decode(t, req.frame).(*mpcp.RegisterReq); !ok || req.llid != ponlink.BroadcastLLID {
		t.Fatalf("discovery burst %+v is not a REGISTER_REQ on the broadcast LLID", req)
	}
	// Inside the window (local 500..1500-42, raw = local + 1000).
	if req.at < 1500 || req.at > 2500-42 {
		t.Errorf("REGISTER_REQ at raw %d, want inside 1500..%d", req.at, 2500-42)
	}
	o.Receive(ponlink.BroadcastLLID, true, mpcpFrame(t, myAddr, 1500, &mpcp.Register{AssignedPort: 7, Flags: mpcp.RegAck, SyncTime: 32}), clk.t)
	if o.State() != AckPending || o.LLID() != 7 {
		t.Fatalf("after REGISTER: %v LLID %d, want ack-pending 7", o.State(), o.LLID())
	}
	o.Receive(7, false, mpcpFrame(t, myAddr, 1500, &mpcp.Gate{Grants: []mpcp.Grant{{Start: 1600, Length: 42}}}), clk.t)
	clk.t = 2600
	o.Tick()
	if ack, ok := decode(t, tx.sent[1].frame).(*mpcp.RegisterAck); !ok || ack.EchoedAssignedPort != 7 || tx.sent[1].at != 2600 {
		t.Fatalf("second burst %+v, want REGISTER_ACK for LLID 7 at raw 2600", tx.sent[1])
	}
	if o.State() != Registered {
		t.Fatalf("state %v, want registered", o.State())
	}
	tx.sent = nil
	return o, clk, tx
}

func TestRegistrationAndBurst(t *testing.T) {
	o, clk, tx := register(t, Config{Threshold: 1000})
	for i := range 5 {
		if err := o.Enqueue(make([]byte, 476)); err != nil { // 500 bytes of line time each
			t.Fatalf("Enqueue(%d) = %v", i, err)
		}
	}
	// A 1584-byte window (792 quanta at 1 Gb/s): 3 frames and the REPORT.
	o.Receive(7, false, mpcpFrame(t, myAddr, 1600, &mpcp.Gate{Grants: []mpcp.Grant{{Start: 2000, Length: 792, ForceReport: true}}}), clk.t)
	if next := o.Tick(); len(tx.sent) != 0 || next != 3000 {
		t.Fatalf("sent %d before the grant, next tick %d, want 0 and 3000", len(tx.sent), next)
	}
	clk.t = 3000
	o.Receive(ponlink.BroadcastLLID, true, mpcpFrame(t, mpcp.MACControlAddr, 2000, &mpcp.Gate{Discovery: true, Grants: []mpcp.Grant{{Start: 9000, Length: 100}}}), clk.t)
	o.Tick()
	if len(tx.sent) != 4 {
		t.Fatalf("burst of %d frames, want 3 data frames and a REPORT", len(tx.sent))
	}
	for i, s := range tx.sent[:3] {
		if want := int64(3000 + 250*i); s.at != want {
			t.Errorf("frame %d at %d, want %d", i, s.at, want)
		}
	}
	rep, ok := decode(t, tx.sent[3].frame).(*mpcp.Report)
	if !ok {
		t.Fatalf("last frame of the burst is not a REPORT")
	}
	// 2 frames (1000 bytes, 500 quanta) left; the aligned set up to the
	// 1000-byte threshold holds both.
	if len(rep.QueueSets) != 1 || rep.QueueSets[0].Lengths[0] != 500 {
		t.Errorf("REPORT %+v, want one set of 500 quanta", rep.QueueSets)
	}
	if o.Queued() != 1000 {
		t.Errorf("Queued() = %d, want 1000", o.Queued())
	}
}

func TestBackoffAndTimeout(t *testing.T) {
	clk, tx := &fakeClock{}, &fakeTx{}
	o, err := New(Config{MAC: myAddr, Seed: 3}, clk, tx)
	if err != nil {
		t.Fatal(err)
	}
	o.PowerOn()
	tries := 0
	for w := range 40 {
		start := uint32(w * 10000)
		o.Receive(ponlink.BroadcastLLID, true, mpcpFrame(t, mpcp.MACControlAddr, start, &mpcp.Gate{Discovery: true, Grants: []mpcp.Grant{{Start: start + 100, Length: 500}}}), int64(start))
		clk.t = int64(start) + 700
		n := len(tx.sent)
		o.Tick()
		if len(tx.sent) > n {
			tries++
		}
	}
	// No REGISTER ever comes: the ONU backs off, so it tries in fewer
	// than all 40 windows, but keeps trying.
	if tries < 4 || tries > 30 {
		t.Errorf("tried in %d of 40 windows, want back-off (4..30)", tries)
	}
	if o.Stats().Backoffs == 0 {
		t.Error("no back-offs counted")
	}

	// A registered ONU without GATEs for the MPCP timeout deregisters.
	r, rclk, _ := register(t, Config{})
	rclk.t += DefaultMPCPTimeout + 1
	r.Tick()
	if r.State() != Discovery || r.Stats().Timeouts != 1 {
		t.Errorf("after the MPCP timeout: %v, %d timeouts; want discovery, 1", r.State(), r.Stats().Timeouts)
	}
	if err := r.Enqueue(make([]byte, 60)); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("Enqueue while unregistered = %v, want %v", err, ErrNotRegistered)
	}
}

func TestDeregisterAndQueueLimit(t *testing.T) {
	o, clk, _ := register(t, Config{QueueLimit: 1000})
	if err := o.Enqueue(make([]byte, 900)); err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(make([]byte, 100)); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Enqueue past the limit = %v, want %v", err, ErrQueueFull)
	}
	// Another ONU's deregistration is not ours.
	o.Receive(8, false, mpcpFrame(t, net.HardwareAddr{2, 0, 0, 0, 0, 9}, 1, &mpcp.Register{AssignedPort: 8, Flags: mpcp.RegDeregister}), clk.t)
	if o.State() != Registered {
		t.Fatalf("deregistered by another LLID's REGISTER")
	}
	o.Receive(7, false, mpcpFrame(t, myAddr, 1, &mpcp.Register{AssignedPort: 7, Flags: mpcp.RegDeregister}), clk.t)
	if o.State() != Discovery || o.Stats().Deregistrations != 1 {
		t.Errorf("after REGISTER(deregister): %v, %d deregistrations", o.State(), o.Stats().Deregistrations)
	}
	// Garbage is counted, not fatal.
	o.Receive(ponlink.BroadcastLLID, true, []byte{1, 2, 3}, clk.t)
	o.Receive(ponlink.BroadcastLLID, true, append(mpcpFrame(t, myAddr, 1, &mpcp.Report{})[:20], make([]byte, 2)...), clk.t)
	if o.Stats().RxErrors != 2 {
		t.Errorf("rx errors = %d, want 2", o.Stats().RxErrors)
	}
}

func TestOAMResponder(t *testing.T) {
	o, clk, tx := register(t, Config{})
	info := func(flags oam.Flags) []byte {
		b, err := (&oam.PDU{Destination: oam.SlowProtocolsAddr, Source: oltAddr, Flags: flags,
			Payload: &oam.Information{Local: &oam.InfoTLV{Version: 1, Config: 1, MaxPDUSize: 1518}}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	o.Receive(7, false, info(oam.FlagLocalEvaluating), clk.t)
	if o.OAMState() != "send-local-remote-ok" {
		t.Fatalf("OAM state %s after the OLT's first Information", o.OAMState())
	}
	o.Receive(7, false, info(oam.FlagLocalStable|oam.FlagRemoteStable), clk.t)
	if o.OAMState() != "send-any" {
		t.Fatalf("OAM state %s after the OLT went stable", o.OAMState())
	}
	if !o.DyingGasp() {
		t.Fatal("DyingGasp() = false")
	}
	o.Receive(7, false, mpcpFrame(t, myAddr, 3000, &mpcp.Gate{Grants: []mpcp.Grant{{Start: 3000, Length: 500}}}), clk.t)
	clk.t = 4000
	o.Tick()
	// The dying gasp leads the burst; then the ONU is dead.
	var p oam.PDU
	if err := p.UnmarshalBinary(tx.sent[0].frame); err != nil || p.Flags&oam.FlagDyingGasp == 0 {
		t.Fatalf("first frame of the burst: %v flags %v, want a dying gasp", err, p.Flags)
	}
	if o.State() != Off {
		t.Errorf("state after the dying gasp %v, want off", o.State())
	}
}

func TestLossCounter(t *testing.T) {
	c := NewLossCounter()
	for _, s := range []uint64{0, 1, 3, 4, 2, 5} {
		if !c.Add(NumberedFrame(oltAddr, myAddr, 9, s, 64)) {
			t.Fatalf("Add(seq %d) = false", s)
		}
	}
	c.Expect(9, 8)
	if c.Received[9] != 6 || c.Lost[9] != 1+2 || c.OutOfOrder[9] != 1 {
		t.Errorf("received %d lost %d out of order %d, want 6, 3, 1", c.Received[9], c.Lost[9], c.OutOfOrder[9])
	}
	if c.Add(make([]byte, 64)) {
		t.Error("Add(zero frame) = true")
	}
	if s, q, ok := ParseNumbered(NumberedFrame(oltAddr, myAddr, 3, 77, 10)); !ok || s != 3 || q != 77 {
		t.Errorf("ParseNumbered = %d, %d, %v", s, q, ok)
	}
}

func TestEmulatorRejectsBadInput(t *testing.T) {
	if _, err := NewEmulator(nil, nil); err == nil {
		t.Error("NewEmulator(no ONUs) = nil error")
	}
	if _, err := NewEmulator([]Emulated{{Config: Config{MAC: myAddr}, DistanceKm: -1}}, nil); err == nil {
		t.Error("NewEmulator(-1 km) = nil error")
	}
	e, err := NewEmulator([]Emulated{{Config: Config{MAC: myAddr}, DistanceKm: 1}}, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	defer e.Close()
	e.HandleDatagram([]byte("not a ponlink datagram at all"))
	if st := e.Stats(); st.RxErrors != 1 {
		t.Errorf("rx errors = %d, want 1", st.RxErrors)
	}
	if err := e.Do(5, func(*ONU) {}); err == nil {
		t.Error("Do(5) on a 1-ONU emulator = nil error")
	}
	if _, err := New(Config{MAC: net.HardwareAddr{1}}, &fakeClock{}, &fakeTx{}); err == nil {
		t.Error("New(1-byte MAC) = nil error")
	}
}
