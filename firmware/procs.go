package main

// bladeProcs is how many Go processors (GOMAXPROCS) a blade runs with on ncpu CPUs, and
// whether to set it; env is the GOMAXPROCS variable, which wins when set.
//
// A blade with one CPU still gets two. With one, Go runs its goroutines in turn on one
// thread: a goroutine woken by the network (the probe responder, an SNMP request) waits
// behind every runnable one, up to Go's 10 ms preemption slice each, and a takeover makes
// several runnable at once (the agent's start, the checkpoint, the address steps). Measured
// on the QEMU shelf, a new active read its first probe 2-69 ms after the kernel had it. With
// two, the woken goroutine's thread is the guest kernel's to schedule, which preempts on
// wake-up: 1-6 ms. The cost is a second thread that runs when both have work.
func bladeProcs(ncpu int, env string) (int, bool) {
	if env != "" || ncpu >= 2 {
		return 0, false
	}
	return 2, true
}
