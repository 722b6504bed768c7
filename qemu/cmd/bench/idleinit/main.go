// Command idleinit is the init of the bench's idle guest: the blades' kernel with a
// process that does nothing. `bench shelf` boots it beside the shelf, and the host CPU its
// QEMU burns is the floor that shelf.idle_cpu is set against (what an emulated blade costs
// with no firmware running).
package main

import "time"

func main() {
	for {
		time.Sleep(time.Hour)
	}
}
