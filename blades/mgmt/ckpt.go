package mgmt

import (
	"context"
	"time"

	"github.com/cgoa/cgoa/ha/ckpt"
)

// Names of the mgmt blade's checkpoint and the SNMP agent's section in it.
const (
	ckptName      = "mgmt"
	ckptSNMP      = "snmp"
	ckptRetention = 24 * time.Hour
)

// ckptStore keeps the SNMP state in a section of the mgmt group's checkpoint (ha/ckpt):
// written synchronously by the active blade, replicated to the standby.
type ckptStore struct{ *ckpt.Section }

func newCkptStore(node *ckpt.Node) ckptStore {
	return ckptStore{ckpt.NewSection(node, ckptName, ckptSNMP)}
}

// Save stores data and returns once the standby holds it.
func (c ckptStore) Save(ctx context.Context, data []byte) error {
	return c.Section.Save(ctx, data, true)
}
