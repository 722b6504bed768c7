//go:build epon

package main

import epon "github.com/cgoa/cgoa/blades/epon"

// The blade role compiled into this binary.
var role = epon.Role()
