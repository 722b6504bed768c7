// Package sim is a deterministic discrete-event loop on virtual time for
// simulating a shelf's HA core: events run one at a time in (time,
// scheduling order), so a run is a pure function of its seed.
//
//	loop := sim.NewLoop()
//	loop.After(10*time.Millisecond, func() { ... })
//	loop.RunUntil(5 * time.Second)
//
// It implements transport.Scheduler for transport.MemNetwork.
package sim
