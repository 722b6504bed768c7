package amf

import "fmt"

// HAState is a service unit's HA state for its assignments.
type HAState uint8

// HA states (SA Forum AMF).
const (
	Unassigned HAState = iota // no assignment (spare, locked, failed)
	Active                    // provides the service
	Standby                   // ready to take over
	Quiescing                 // finishing work before giving the assignment up
	Quiesced                  // stopped providing; about to hand over
)

var stateNames = [...]string{"unassigned", "active", "standby", "quiescing", "quiesced"}

func (s HAState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("HAState(%d)", uint8(s))
}

// MarshalText makes states read as words in JSON.
func (s HAState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Assignment is what a unit is told when its HA state or set of
// instances changes.
type Assignment struct {
	Group     string   `json:"group"`
	Unit      string   `json:"unit"`
	State     HAState  `json:"state"`
	Instances []string `json:"instances,omitempty"` // the SIs this state is for
}

// OperState is a unit's operational readiness.
type OperState string

// Operational / admin readiness words used in Status.
const (
	InService  OperState = "in-service"
	Locked     OperState = "locked"
	Failed     OperState = "failed"
	Extracting OperState = "extracting"
	// NotReady: in service, but a component's readiness gate holds the
	// unit back from taking over (Component.Ready).
	NotReady OperState = "not-ready"
)
