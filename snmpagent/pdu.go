package snmpagent

import (
	"github.com/gosnmp/gosnmp"
)

// maxBulkVarbinds caps the work one GETBULK may ask for.
const maxBulkVarbinds = 2048

func toPDU(oid OID, v Value) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid.String(), Type: v.Type, Value: v.Raw}
}

func isException(v Value) bool {
	return v.Type == gosnmp.NoSuchObject || v.Type == gosnmp.NoSuchInstance || v.Type == gosnmp.EndOfMibView
}

// get serves GetRequest (RFC 3416 4.2.1; v1: noSuchName on any miss).
func (a *Agent) get(r *request) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, int) {
	out := make([]gosnmp.SnmpPDU, len(r.pkt.Variables))
	for i, vb := range r.pkt.Variables {
		oid, err := ParseOID(vb.Name)
		if err != nil {
			return nil, gosnmp.GenErr, i + 1
		}
		v := exception(gosnmp.NoSuchObject)
		if r.read.Includes(oid) {
			v = a.tree.Get(oid)
		}
		if r.version == gosnmp.Version1 && (isException(v) || v.Type == gosnmp.Counter64) {
			return nil, gosnmp.NoSuchName, i + 1
		}
		out[i] = gosnmp.SnmpPDU{Name: vb.Name, Type: v.Type, Value: v.Raw}
	}
	return out, gosnmp.NoError, 0
}

// next finds the successor of oid in r's read view. SNMPv1 cannot carry
// Counter64, so a v1 walk skips those instances (RFC 3584 4.2.2.1).
func (a *Agent) next(r *request, oid OID) (OID, Value, bool) {
	if r.allow == nil {
		r.allow = func(o OID, v Value) bool {
			if r.version == gosnmp.Version1 && v.Type == gosnmp.Counter64 {
				return false
			}
			return r.read.Includes(o)
		}
	}
	return a.tree.Next(oid, r.allow)
}

// getNext serves GetNextRequest.
func (a *Agent) getNext(r *request) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, int) {
	out := make([]gosnmp.SnmpPDU, len(r.pkt.Variables))
	for i, vb := range r.pkt.Variables {
		oid, err := ParseOID(vb.Name)
		if err != nil {
			return nil, gosnmp.GenErr, i + 1
		}
		n, v, ok := a.next(r, oid)
		if !ok {
			if r.version == gosnmp.Version1 {
				return nil, gosnmp.NoSuchName, i + 1
			}
			out[i] = gosnmp.SnmpPDU{Name: vb.Name, Type: gosnmp.EndOfMibView}
			continue
		}
		out[i] = toPDU(n, v)
	}
	return out, gosnmp.NoError, 0
}

// getBulk serves GetBulkRequest (RFC 3416 4.2.3), dropping trailing
// repetitions until the response fits the size limit.
func (a *Agent) getBulk(r *request) Response {
	vars := r.pkt.Variables
	n := min(int(r.pkt.NonRepeaters), len(vars))
	reps := len(vars) - n
	m := int(r.pkt.MaxRepetitions)
	if reps == 0 {
		m = 0
	}
	if reps > 0 && m > (maxBulkVarbinds-n)/reps {
		m = max((maxBulkVarbinds-n)/reps, 0)
	}
	out := make([]gosnmp.SnmpPDU, 0, n+reps*m)
	for i := 0; i < n; i++ {
		oid, err := ParseOID(vars[i].Name)
		if err != nil {
			return a.encodeResponse(r, gosnmp.GenErr, i+1, vars)
		}
		if nx, v, ok := a.next(r, oid); ok {
			out = append(out, toPDU(nx, v))
		} else {
			out = append(out, gosnmp.SnmpPDU{Name: vars[i].Name, Type: gosnmp.EndOfMibView})
		}
	}
	cur := make([]OID, reps)
	done := make([]bool, reps)
	for j := range cur {
		oid, err := ParseOID(vars[n+j].Name)
		if err != nil {
			return a.encodeResponse(r, gosnmp.GenErr, n+j+1, vars)
		}
		cur[j] = oid
	}
	// Stop early when the response is sure to be too big anyway; the
	// marshal-and-trim loop below does the exact fit.
	budget := r.maxSize
	size := 0
	for rep := 0; rep < m && size < budget; rep++ {
		allDone := true
		for j := range cur {
			if done[j] {
				out = append(out, gosnmp.SnmpPDU{Name: cur[j].String(), Type: gosnmp.EndOfMibView})
				continue
			}
			nx, v, ok := a.next(r, cur[j])
			if !ok {
				done[j] = true
				out = append(out, gosnmp.SnmpPDU{Name: cur[j].String(), Type: gosnmp.EndOfMibView})
				continue
			}
			allDone = false
			cur[j] = nx
			pdu := toPDU(nx, v)
			size += len(pdu.Name)/2 + 8 + valueSizeHint(v)
			out = append(out, pdu)
		}
		if allDone {
			break
		}
	}
	for {
		msg, err := a.marshal(r, gosnmp.NoError, 0, out)
		if err != nil {
			return a.encodeResponse(r, gosnmp.GenErr, 0, vars)
		}
		if len(msg) <= r.maxSize {
			return Response{Data: msg, pdu: gosnmp.GetResponse}
		}
		if len(out) <= 1 {
			return a.encodeResponse(r, gosnmp.TooBig, 0, nil)
		}
		// Trim proportionally to the excess, at least one varbind.
		cut := max(1, len(out)*(len(msg)-r.maxSize)/len(msg))
		out = out[:len(out)-cut]
	}
}

func valueSizeHint(v Value) int {
	if b, ok := v.Raw.([]byte); ok {
		return len(b) + 4
	}
	if s, ok := v.Raw.(string); ok {
		return len(s)/2 + 4
	}
	return 8
}

// set serves SetRequest all-or-nothing (RFC 3416 4.2.5): every varbind is
// checked (access, then the handler's TestSet) before any is committed;
// a failed commit undoes the earlier ones in reverse order.
func (a *Agent) set(r *request) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, int) {
	vars := r.pkt.Variables
	type op struct {
		oid OID
		v   Value
		s   Setter
	}
	ops := make([]op, len(vars))
	a.setMu.Lock()
	defer a.setMu.Unlock()
	for i, vb := range vars {
		oid, err := ParseOID(vb.Name)
		if err != nil {
			return nil, gosnmp.GenErr, i + 1
		}
		if r.write == nil || !r.write.Includes(oid) {
			return nil, gosnmp.NoAccess, i + 1
		}
		s, st := a.tree.setter(oid)
		if st != gosnmp.NoError {
			return nil, st, i + 1
		}
		v := fromWire(vb.Type, vb.Value)
		if v.Type == gosnmp.UnknownType || isException(v) || v.Type == gosnmp.Null {
			return nil, gosnmp.WrongType, i + 1
		}
		if st := s.TestSet(oid, v); st != gosnmp.NoError {
			return nil, st, i + 1
		}
		ops[i] = op{oid, v, s}
	}
	undos := make([]func() error, 0, len(ops))
	for i, o := range ops {
		undo, st := o.s.CommitSet(o.oid, o.v)
		if st == gosnmp.NoError {
			undos = append(undos, undo)
			continue
		}
		status := gosnmp.CommitFailed
		for k := len(undos) - 1; k >= 0; k-- {
			if undos[k] != nil && undos[k]() != nil {
				status = gosnmp.UndoFailed
			}
		}
		return nil, status, i + 1
	}
	out := make([]gosnmp.SnmpPDU, len(vars))
	for i, o := range ops {
		out[i] = toPDU(o.oid, o.v)
	}
	return out, gosnmp.NoError, 0
}
