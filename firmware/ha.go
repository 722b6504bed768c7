package main

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/hal"
)

// haSettings are the HA inputs from flags (process mode) or the kernel command line (blade).
type haSettings struct {
	shelfMap string // "SLOT:ROLE,..."
	key      string // hex shelf key
	timers   string // "INTERVALxMISSES"
}

// haConfig turns the settings into the blade's HA configuration. No key means HA is off (nil,
// nil): a blade outside a configured shelf still boots and serves its console.
func haConfig(id hal.Identity, s haSettings) (*blade.HAConfig, error) {
	if s.key == "" {
		return nil, nil
	}
	key, err := hex.DecodeString(strings.TrimSpace(s.key))
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("shelf key: want at least 16 bytes of hex")
	}
	if s.shelfMap == "" {
		s.shelfMap = shelf.DefaultMap
	}
	m, err := shelf.ParseMap(s.shelfMap)
	if err != nil {
		return nil, err
	}
	t, err := shelf.ParseTimers(s.timers)
	if err != nil {
		return nil, err
	}
	cfg := &blade.HAConfig{Map: m, Key: key, Timers: t}
	if id.IsHub() {
		// A hub is on both base planes through its backplane bridge.
		cfg.Ports, cfg.Planes = []string{"br0"}, [][]int{{0, 1}}
	} else {
		cfg.Ports, cfg.Planes = []string{"base0", "base1"}, [][]int{{0}, {1}}
	}
	return cfg, nil
}
