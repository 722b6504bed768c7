//go:build !mgmt && !switch && !epon

package main

// Building the firmware needs exactly one role tag. This identifier is deliberately undefined,
// so that a build without a role fails with a message saying which tags exist:
var role = build_with_exactly_one_role_tag__mgmt_or_switch_or_epon
