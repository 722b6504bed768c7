//go:build !mgmt && !switch && !epon

package main

import (
	_ "unsafe" // for go:linkname

	"github.com/cgoa/cgoa/blades/blade"
)

// Building the firmware needs exactly one role tag (mgmt, switch or epon). Without one, this
// file stands in: it type-checks (so `go vet ./...` stays clean), and the link fails on the
// symbol below, whose name says which tags exist.
var role = blade.Role{Name: "none"}

//go:linkname build_with_exactly_one_role_tag__mgmt_or_switch_or_epon build_with_exactly_one_role_tag__mgmt_or_switch_or_epon
func build_with_exactly_one_role_tag__mgmt_or_switch_or_epon()

func init() { build_with_exactly_one_role_tag__mgmt_or_switch_or_epon() }
