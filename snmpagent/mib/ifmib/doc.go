// Package ifmib serves IF-MIB (RFC 2863) for the blade's ports: ifNumber,
// ifTable, ifXTable with the 64-bit (HC) counters, ifTableLastChange, and
// the linkUp/linkDown notifications' varbinds.
//
// Data comes from a PortSource (hal.Ports satisfies it through a one-line
// adapter: List). ifIndex values are assigned by this package, not taken
// from the kernel: a port keeps its ifIndex while it comes and goes, and
// the assignment travels with State to the standby, so a manager's
// ifIndex stays valid across a failover.
//
// Counters served are kept monotonic: each sample adds the growth of the
// kernel counter to the served value (a kernel counter that went
// backward restarted from zero, so its whole value is growth). After
// Import, served values start from the imported ones and grow from the
// new blade's first sample: no counter goes backward across a failover.
//
// Use:
//
//	ifs := ifmib.New(portSource, ifmib.Options{Admin: ports.SetAdmin})
//	ifs.Register(agent)
//	ifs.OnLinkChange(func(c ifmib.LinkChange) { ... }) // or traps.Mapper
//	go ifs.Poll(ctx, time.Second)
//
// What the kernel does not count is not served: the unicast/multicast
// split (ifHCInUcastPkts counts every packet received, ifHCOutUcastPkts
// every packet sent; the multicast/broadcast columns are absent),
// ifInUnknownProtos, and the deprecated ifInNUcastPkts/ifOutNUcastPkts,
// ifOutQLen and ifSpecific.
package ifmib
