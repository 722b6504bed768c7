package epon

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/blades/statefeed"
	"github.com/cgoa/cgoa/ha/transport"
)

// feedLoop delivers published frames straight into a Feed as slot from.
type feedLoop struct {
	f    *statefeed.Feed
	from uint8
}

func (l feedLoop) Send(_ transport.Type, _ uint8, p []byte) error {
	l.f.Receive(l.from, p)
	return nil
}

type fakeOLT struct {
	name string
	onus []olt.ONUView
}

func (o fakeOLT) Name() string { return o.name }
func (o fakeOLT) ShowPON() olt.PONView {
	return olt.PONView{Name: o.name, MAC: "02:00:00:00:01:00", Stats: olt.PONStats{DiscoveryWindowsSent: 12, RxReport: 40, Timeouts: 1}}
}
func (o fakeOLT) ShowONUs() []olt.ONUView { return o.onus }
func (o fakeOLT) ONU(llid uint16) (olt.ONUView, bool) {
	for _, u := range o.onus {
		if u.LLID == llid && u.State != "deregistered" {
			return u, true
		}
	}
	return olt.ONUView{}, false
}

// TestEPONFeed: the table carries registered and registering LLIDs (not deregistered ONUs),
// and alarms become events with the ONU's RTT.
func TestEPONFeed(t *testing.T) {
	f := statefeed.NewFeed(statefeed.Options{})
	var events []statefeed.Event
	f.OnEvent(func(e statefeed.Event) { events = append(events, e) })
	o := fakeOLT{name: "pon1", onus: []olt.ONUView{
		{PON: "pon1", LLID: 1, MAC: "02:00:00:00:10:01", State: "registered", RTT: 625, OAM: "send-any", Stats: olt.ONUStats{RxReport: 9, TxGate: 10}},
		{PON: "pon1", LLID: 2, MAC: "02:00:00:00:10:02", State: "registering", RTT: 630},
		{PON: "pon1", LLID: 0, MAC: "02:00:00:00:10:03", State: "deregistered"},
	}}
	ef := NewEPONFeed(feedLoop{f, 7}, func() []OLTSource { return []OLTSource{o} })
	if err := ef.p.EPON(ef.Table()); err != nil {
		t.Fatal(err)
	}
	got := f.PONs()
	if len(got) != 1 || got[0].Slot != 7 || len(got[0].PONs) != 1 {
		t.Fatalf("PONs() = %+v, want slot 7 with one PON", got)
	}
	p := got[0].PONs[0]
	want := []statefeed.ONU{
		{LLID: 1, MAC: [6]byte{2, 0, 0, 0, 0x10, 1}, State: statefeed.Registered, RTT: 625, OAMStatus: 9, Stats: statefeed.MPCPStats{RxReport: 9, TxGate: 10}},
		{LLID: 2, MAC: [6]byte{2, 0, 0, 0, 0x10, 2}, State: statefeed.Registering, RTT: 630, OAMStatus: 1},
	}
	if p.Name != "pon1" || p.Index != 1 || p.Stats.DiscoveryWindowsSent != 12 || p.Stats.DiscoveryTimeout != 1 || !reflect.DeepEqual(p.ONUs, want) {
		t.Errorf("PON = %+v, want pon1 index 1 with ONUs %+v", p, want)
	}
	ef.Alarm(olt.Alarm{Kind: olt.AlarmRegistered, PON: "pon1", LLID: 1, MAC: "02:00:00:00:10:01"})
	ef.Alarm(olt.Alarm{Kind: olt.AlarmOAMUp, PON: "pon1", LLID: 1})
	ef.Alarm(olt.Alarm{Kind: olt.AlarmMPCPTimeout, PON: "pon1", LLID: 2, MAC: "02:00:00:00:10:02"})
	for len(ef.events) > 0 {
		if err := ef.p.Event(<-ef.events); err != nil {
			t.Fatal(err)
		}
	}
	if len(events) != 2 || events[0].Kind != statefeed.ONURegistered || events[0].RTT != 625 || events[0].From != 7 ||
		events[1].Kind != statefeed.ONULost || events[1].LLID != 2 || events[1].PONIndex != 1 {
		t.Errorf("events %+v, want registered (RTT 625) then lost LLID 2", events)
	}
}

// kindLog records the kinds of the frames a publisher sends.
type kindLog struct{ kinds chan statefeed.Kind }

func (k kindLog) Send(_ transport.Type, _ uint8, p []byte) error {
	pt, err := statefeed.Decode(p)
	if err != nil {
		return err
	}
	if pt.Index == 0 {
		k.kinds <- pt.Kind
	}
	return nil
}

// TestEPONFeedRun: Run publishes the table at once, and for an alarm the table again and
// then the event, so the mgmt blade holds the ONU's row when it sends the trap.
func TestEPONFeedRun(t *testing.T) {
	kl := kindLog{kinds: make(chan statefeed.Kind, 64)}
	o := fakeOLT{name: "pon0", onus: []olt.ONUView{{PON: "pon0", LLID: 1, MAC: "02:00:00:00:10:01", State: "registered", RTT: 600}}}
	ef := NewEPONFeed(kl, func() []OLTSource { return []OLTSource{o} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ef.Run(ctx) }()
	defer func() { cancel(); <-done }()
	next := func() statefeed.Kind {
		t.Helper()
		select {
		case k := <-kl.kinds:
			return k
		case <-time.After(10 * time.Second):
			t.Fatal("no frame published")
			return 0
		}
	}
	if k := next(); k != statefeed.KindEPON {
		t.Fatalf("first publication %v, want the table", k)
	}
	ef.Alarm(olt.Alarm{Kind: olt.AlarmDeregistered, PON: "pon0", LLID: 1, MAC: "02:00:00:00:10:01"})
	var got []statefeed.Kind
	for len(got) == 0 || got[len(got)-1] != statefeed.KindEPONEvent {
		got = append(got, next())
	}
	if len(got) < 2 || got[len(got)-2] != statefeed.KindEPON {
		t.Errorf("after the alarm %v, want the table then the event", got)
	}
}
