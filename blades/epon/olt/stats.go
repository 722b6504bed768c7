package olt

import "fmt"

// PONStats are the per-port counters: the DOT3-EPON-MIB (RFC 4837)
// dot3MpcpStatTable objects for the OLT's PON interface (names as in the
// MIB, without the dot3Mpcp prefix), and the port's own.
type PONStats struct {
	MACCtrlFramesTransmitted uint64 `json:"mac_ctrl_frames_transmitted"`
	MACCtrlFramesReceived    uint64 `json:"mac_ctrl_frames_received"`
	DiscoveryWindowsSent     uint64 `json:"discovery_windows_sent"`
	// Timeouts is dot3MpcpDiscoveryTimeout's OLT reading: ONUs
	// deregistered by the MPCP timeout.
	Timeouts     uint64 `json:"timeouts"`
	TxGate       uint64 `json:"tx_gate"`
	TxRegister   uint64 `json:"tx_register"`
	RxRegRequest uint64 `json:"rx_reg_request"`
	RxRegAck     uint64 `json:"rx_reg_ack"`
	RxReport     uint64 `json:"rx_report"`

	Registrations   uint64 `json:"registrations"`
	Deregistrations uint64 `json:"deregistrations"`
	RegisterNacks   uint64 `json:"register_nacks"`
	RangeErrors     uint64 `json:"range_errors"`
	OutOfWindow     uint64 `json:"out_of_window"`
	Repolls         uint64 `json:"repolls"`
	// PacedPolls counts REPORTs answered later because the ONU was at
	// its peak rate.
	PacedPolls    uint64 `json:"paced_polls"`
	TxFrames      uint64 `json:"tx_frames"`
	TxErrors      uint64 `json:"tx_errors"`
	RxFrames      uint64 `json:"rx_frames"`
	RxDataFrames  uint64 `json:"rx_data_frames"`
	RxErrors      uint64 `json:"rx_errors"`
	RxUnknownLLID uint64 `json:"rx_unknown_llid"`
}

// OAMStats are one ONU's OAM counters (DOT3-OAM-MIB, RFC 4878,
// dot3OamStatsTable, without the dot3Oam prefix) and the alarms seen.
type OAMStats struct {
	InformationTx                uint64 `json:"information_tx"`
	InformationRx                uint64 `json:"information_rx"`
	UniqueEventNotificationRx    uint64 `json:"unique_event_notification_rx"`
	DuplicateEventNotificationRx uint64 `json:"duplicate_event_notification_rx"`
	LoopbackControlTx            uint64 `json:"loopback_control_tx"`
	LoopbackControlRx            uint64 `json:"loopback_control_rx"`
	VariableRequestTx            uint64 `json:"variable_request_tx"`
	VariableRequestRx            uint64 `json:"variable_request_rx"`
	VariableResponseRx           uint64 `json:"variable_response_rx"`
	OrgSpecificRx                uint64 `json:"org_specific_rx"`
	UnsupportedCodesRx           uint64 `json:"unsupported_codes_rx"`
	RxErrors                     uint64 `json:"rx_errors"`
	LinkEvents                   uint64 `json:"link_events"`
	DyingGasps                   uint64 `json:"dying_gasps"`
	LinkLost                     uint64 `json:"link_lost"`
}

// ONUStats are one ONU's (one LLID's) counters: RFC 4837
// dot3MpcpStatTable for the LLID's virtual interface, dot3MpcpRoundTripTime,
// data counters and OAM.
type ONUStats struct {
	MACCtrlFramesTransmitted uint64 `json:"mac_ctrl_frames_transmitted"`
	MACCtrlFramesReceived    uint64 `json:"mac_ctrl_frames_received"`
	TxGate                   uint64 `json:"tx_gate"`
	TxRegister               uint64 `json:"tx_register"`
	RxRegRequest             uint64 `json:"rx_reg_request"`
	RxRegAck                 uint64 `json:"rx_reg_ack"`
	RxReport                 uint64 `json:"rx_report"`
	Timeouts                 uint64 `json:"timeouts"`
	// RTT is the round-trip time at registration, quanta
	// (dot3MpcpRoundTripTime reads the current one, ONUView.RTT).
	RTT             int64  `json:"rtt_at_registration_tq"`
	Registrations   uint64 `json:"registrations"`
	Deregistrations uint64 `json:"deregistrations"`
	Repolls         uint64 `json:"repolls"`
	TxFrames        uint64 `json:"tx_frames"`
	RxDataFrames    uint64 `json:"rx_data_frames"`
	RxDataBytes     uint64 `json:"rx_data_bytes"`
	// RxTestFrames counts the numbered test frames among the data
	// frames (blades/epon/onu.NumberedFrame), RxDataLost the gaps in
	// their sequences and RxDataOutOfOrder numbers that came late.
	RxTestFrames     uint64   `json:"rx_test_frames"`
	RxDataLost       uint64   `json:"rx_data_lost"`
	RxDataOutOfOrder uint64   `json:"rx_data_out_of_order"`
	OAM              OAMStats `json:"oam"`
}

// AlarmKind says what an Alarm reports.
type AlarmKind int

// Alarm kinds.
const (
	AlarmRegistered AlarmKind = iota
	AlarmDeregistered
	AlarmMPCPTimeout
	AlarmOAMUp
	AlarmOAMLinkLost
	AlarmDyingGasp
	AlarmLinkFault
	AlarmCriticalEvent
	AlarmLinkEvent
	AlarmLoopback
)

var alarmNames = [...]string{"registered", "deregistered", "mpcp-timeout", "oam-up", "oam-link-lost",
	"dying-gasp", "link-fault", "critical-event", "link-event", "loopback"}

func (k AlarmKind) String() string {
	if int(k) < len(alarmNames) {
		return alarmNames[k]
	}
	return fmt.Sprintf("AlarmKind(%d)", int(k))
}

// MarshalText makes alarm kinds read as names in JSON.
func (k AlarmKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Severity is the X.733-style severity of the kind: "info" for
// registration events, "major" or "critical" for faults.
func (k AlarmKind) Severity() string {
	switch k {
	case AlarmRegistered, AlarmOAMUp, AlarmDeregistered, AlarmLoopback:
		return "info"
	case AlarmDyingGasp, AlarmCriticalEvent:
		return "critical"
	}
	return "major"
}

// Alarm is an event on the PON an operator or the SNMP agent wants to
// know of.
type Alarm struct {
	Kind     AlarmKind `json:"kind"`
	Severity string    `json:"severity"`
	PON      string    `json:"pon"`
	LLID     uint16    `json:"llid,omitempty"`
	MAC      string    `json:"mac,omitempty"`
	// Time is the OLT time, quanta.
	Time int64  `json:"time_tq"`
	Text string `json:"text"`
}

func (a Alarm) String() string {
	return fmt.Sprintf("%s %s %s LLID %d %s: %s", a.Severity, a.PON, a.Kind, a.LLID, a.MAC, a.Text)
}
