//go:build switch

package main

import switchblade "github.com/cgoa/cgoa/blades/switch"

// The blade role compiled into this binary.
var role = switchblade.Role()
