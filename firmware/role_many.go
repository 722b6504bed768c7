//go:build (mgmt && switch) || (mgmt && epon) || (switch && epon)

package main

// Two role tags compile two role files; this undefined identifier makes the error say so.
var _ = only_one_role_tag_allowed__mgmt_or_switch_or_epon
