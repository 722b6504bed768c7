// Package entitymib serves ENTITY-MIB (RFC 6933/4133) for the shelf
// inventory: entPhysicalTable with the chassis, one container per slot,
// the blade (module) in each occupied slot with its FRU data, and the
// blade's ports; entAliasMappingTable linking ports to IF-MIB ifIndex;
// and entLastChangeTime.
//
// entPhysicalIndex values are derived from position, so they are the
// same on every management blade and across failovers without state:
// chassis 1, slot N's container N*1000, its blade N*1000+1, the blade's
// k-th port N*1000+100+k.
//
// Use:
//
//	ent := entitymib.New(inventory, entitymib.Options{IfIndex: ...})
//	ent.Register(agent)
//
// FRUFromIPMI fills a blade's FRU fields from the HAL's IPMI status.
// entPhysicalAlias and entPhysicalAssetID are served empty and are not
// writable yet.
package entitymib
