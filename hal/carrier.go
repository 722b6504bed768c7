package hal

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ChannelPeer is the slot at the far end of a backplane port of the blade in slot self, by the
// dual-star wiring: a node blade's base0 and base1 end at hubs 1 and 2, a hub's node<N> at
// slot N and its isl0 at the other hub. ok is false for ports that are not backplane
// channels (craft, uplink, PON) or do not fit the slot.
func ChannelPeer(port string, self int) (slot int, ok bool) {
	hub := self == 1 || self == 2
	switch {
	case !hub && port == "base0":
		return 1, true
	case !hub && port == "base1":
		return 2, true
	case hub && port == "isl0":
		return 3 - self, true
	case hub && strings.HasPrefix(port, "node"):
		n, err := strconv.Atoi(port[len("node"):])
		if err == nil && n >= 3 && n <= MaxSlot && port == "node"+strconv.Itoa(n) {
			return n, true
		}
	}
	return 0, false
}

// ChannelWatch follows the carrier of a blade's backplane channels through rtnetlink link
// events: the HA core's fencing input (ha.Blade.SetLinks).
type ChannelWatch struct {
	self   int
	events *rtnetlink.Conn
	list   *rtnetlink.Conn
	// down holds the channels' carrier as last read, by port name: true = admin up without
	// carrier. A port that is admin down tells nothing about its far end and is left out.
	down map[string]bool
}

// OpenChannelWatch opens the netlink sockets in the current network namespace (a blade's own,
// or the one a test entered with netstack/netns).
func OpenChannelWatch(self int) (*ChannelWatch, error) {
	ev, err := rtnetlink.Dial(&netlink.Config{Groups: 1 << (unix.RTNLGRP_LINK - 1)})
	if err != nil {
		return nil, fmt.Errorf("hal: carrier watch: %w", err)
	}
	ls, err := rtnetlink.Dial(nil)
	if err != nil {
		ev.Close()
		return nil, fmt.Errorf("hal: carrier watch: %w", err)
	}
	return &ChannelWatch{self: self, events: ev, list: ls, down: map[string]bool{}}, nil
}

// noCarrier is the carrier reading of a link message: admin up without carrier is a channel
// without carrier; admin down says nothing (known false).
func noCarrier(m rtnetlink.LinkMessage) (down, known bool) {
	if m.Flags&unix.IFF_UP == 0 {
		return false, false
	}
	return m.Flags&unix.IFF_LOWER_UP == 0, true
}

func (w *ChannelWatch) take(m rtnetlink.LinkMessage, deleted bool) {
	if m.Attributes == nil {
		return
	}
	name := m.Attributes.Name
	if _, ok := ChannelPeer(name, w.self); !ok {
		return
	}
	down, known := noCarrier(m)
	if deleted || !known {
		delete(w.down, name)
		return
	}
	w.down[name] = down
}

// Down lists the far-end slots of the channels without carrier, ascending.
func (w *ChannelWatch) Down() []uint8 {
	var d []uint8
	for name, down := range w.down {
		if s, ok := ChannelPeer(name, w.self); ok && down {
			d = append(d, uint8(s))
		}
	}
	slices.Sort(d)
	return d
}

func (w *ChannelWatch) resync() error {
	links, err := w.list.Link.List()
	if err != nil {
		return fmt.Errorf("hal: carrier watch: list links: %w", err)
	}
	w.down = map[string]bool{}
	for _, l := range links {
		w.take(l, false)
	}
	return nil
}

// Run calls report with Down at once and after every link event that changes it, in the
// order the kernel sent the events (a carrier that dropped and came back is reported down
// first), until ctx ends. It closes the sockets when it returns.
func (w *ChannelWatch) Run(ctx context.Context, report func(down []uint8)) error {
	defer w.list.Close()
	defer w.events.Close()
	go func() {
		<-ctx.Done()
		w.events.SetReadDeadline(time.Unix(1, 0))
	}()
	if err := w.resync(); err != nil {
		return err
	}
	last := w.Down()
	report(last)
	emit := func() {
		if d := w.Down(); !slices.Equal(d, last) {
			last = d
			report(d)
		}
	}
	for {
		msgs, raw, err := w.events.Receive()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// An overflowed socket lost events: read the state again.
			if rerr := w.resync(); rerr != nil {
				return rerr
			}
			emit()
			continue
		}
		for i, m := range msgs {
			if lm, ok := m.(*rtnetlink.LinkMessage); ok {
				w.take(*lm, raw[i].Header.Type == unix.RTM_DELLINK)
				emit() // per message: a carrier that dropped and came back is reported down first
			}
		}
	}
}
