// Package bridge is the I/O shell between the switch blade's 802.1D agent
// (package stp, pure code) and the Linux bridge that forwards the blade's
// traffic: port states, ageing time and FDB flushes through rtnetlink,
// BPDUs on one raw packet socket per port, carrier changes from
// RTNLGRP_LINK, and a run loop that drives an *stp.Bridge with them.
//
// # How the switch blade uses it
//
//	br, err := bridge.Open(bridge.Config{
//		Name: "br0", Create: true,
//		Ports: []bridge.Port{{Name: "isl0", PathCost: 4}, {Name: "uplink0", PathCost: 4}},
//	})
//	defer br.Close()
//	sb, err := br.NewSTP(stp.Config{ID: id}, bridge.WallClock{}) // br is sb's stp.Env
//	go br.Run(ctx, sb)                                          // until ctx ends
//	// console / BRIDGE-MIB: sb.Snapshot(); shell counters: br.Counters(n)
//
// The standby hub opens the same bridge and, on failover, continues the
// active's tree with stp.Restore(checkpoint.Aged(age), bridge.WallClock{},
// br), which pushes the restored port states and ageing time through br,
// then calls br.Run with the restored bridge.
//
// # Edge ports and holding
//
// Config.EdgePorts are enslaved and held forwarding outside the tree: the
// hub's channels to node blades (which bridge nothing) and, in a protected
// pair, the inter-switch link. Run and Hold put them back in forwarding
// whenever the kernel changes them (in user mode it makes a port blocking
// on carrier up). Hold is the standby of a protected pair: no agent, every
// STP port with carrier held blocking (so the standby neither learns nor
// forwards on its uplinks), BPDUs read and dropped, edge ports forwarding.
// FlushAllFDB forgets every dynamic entry, as a hub does when it takes over
// from a peer through which it learnt addresses.
//
// # STP mode
//
// Open reads IFLA_BR_STP_STATE and refuses to run (ErrNotUserSTP) unless
// the bridge reports user mode (2): in kernel mode (1) the kernel's own
// STP would fight the agent over port states (and refuses port state
// writes), with STP off (0) it floods BPDUs. On the blade the image's
// /sbin/bridge-stp makes the kernel hand STP to user space when STP is
// switched on; Open switches it on for a bridge it finds off, then checks.
//
// The kernel calls /sbin/bridge-stp only for bridges in the initial network
// namespace, so a bridge in a test's namespace can never be in user mode.
// Config.NoSTP is the explicit option for process-mode tests: the bridge's
// STP stays off and this package compensates for what the kernel then does
// differently (see Config.NoSTP): Blocking is written as Listening (the
// kernel turns blocking into forwarding at once with STP off; listening
// drops data the same way), and a tc ingress filter on every port drops
// BPDUs before the bridge could flood them. Port states read back in that
// mode show Listening for a blocked port.
//
// # Port states, ageing, FDB
//
// SetPortState (stp.Env) writes IFLA_BRPORT_STATE with RTM_SETLINK of
// family AF_BRIDGE and IFLA_PROTINFO, as mstpd and `bridge link set` do,
// then reads the state back (RTM_GETLINK) and reports ErrStateMismatch if
// the kernel holds another. The rtnetlink driver package's RTM_NEWLINK
// slave-data path is not used for this: it raises NETDEV_CHANGE, on which
// the bridge re-enables a disabled port that has carrier. FlushFDB sends
// IFLA_BRPORT_FLUSH the same way (dynamic entries of that port only).
// SetAgeingTime writes IFLA_BR_AGEING_TIME (centiseconds) and reads it
// back; the stp.Bridge sets Forward Delay there during a topology change.
// FDB dumps the bridge's entries for `show` commands and tests.
//
// The kernel changes port states by itself on carrier events (disabled on
// loss; on carrier up blocking in user mode, forwarding with STP off). Run
// watches RTNLGRP_LINK: a carrier change calls EnablePort or DisablePort,
// and after any notification about a port it compares the kernel's port
// states with the agent's and calls Resync if they differ.
//
// # BPDUs
//
// Each port has a packet socket bound to it with ETH_P_ALL and a classic
// BPF filter: not outgoing, destination 01:80:C2:00:00:00, an 802.3 length
// field, LLC 42-42-03. Frames are sent from the port's MAC to the group
// address through the same socket, which bypasses the bridge, so a
// blocked port still sends and receives BPDUs.
//
// Why packet sockets see BPDUs although the bridge owns the port: in
// __netif_receive_skb_core the ETH_P_ALL taps (ptype_all) get every frame
// before the device's rx_handler, the bridge's br_handle_frame. With STP
// on (kernel or user mode) the bridge also hands link-local frames to
// 01:80:C2:00:00:00 back up the stack (RX_HANDLER_PASS), where protocol
// handlers such as an ETH_P_802_2 socket see them; that is how mstpd
// receives them (one ETH_P_802_2 socket with a BPF filter for the STP
// LLC, dispatching by interface index). With STP off the bridge forwards
// such frames like data and consumes them, so only a tap sees them; hence
// ETH_P_ALL, which works in both modes (in no-STP mode tc ingress, which
// runs after the taps and before the rx handler, drops them for the
// bridge).
//
// # Tests
//
// The tests make their own network namespaces (ip netns add, veth), need
// root and iproute2, and skip cleanly otherwise. They check that Open
// refuses a namespace bridge in user mode, port states written and read
// back, ageing time, FDB learning and flush; that Run sends BPDUs (captured
// on the veth peer, decoded with stp's codec), walks listening, learning,
// forwarding in the kernel, disables and re-enables ports on carrier, and
// follows a better root injected from the peer without the bridge flooding
// the injected BPDUs; and that two agents and a Linux kernel STP bridge
// joined in a loop build the tree 802.1D defines (computed in the test
// from the topology) with the kernel's 1998 path costs set explicitly.
package bridge
