//go:build mgmt

package main

import mgmt "github.com/cgoa/cgoa/blades/mgmt"

// The blade role compiled into this binary.
var role = mgmt.Role()
