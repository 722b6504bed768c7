package shelf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cgoa/cgoa/image/update"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// CraftAddr is the host address of a blade's craft port (127.0.0.1:PORT), where its
// firmware's update service answers.
func (s *Shelf) CraftAddr(slot int) (string, error) {
	if _, err := s.vmOf(slot); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("127.0.0.1:%d", s.blades[slot].craftPort), nil
}

// FlashTimeout bounds sending one image through a craft port.
var FlashTimeout = 3 * time.Minute

// Flash sends a signed image to a blade through its craft port (image/update protocol).
// The blade checks it before writing anything, writes its inactive bank and stages a trial
// boot for its next reboot. It returns the blade's answer; a refusal is an error carrying
// the blade's reason.
func (s *Shelf) Flash(ctx context.Context, slot int, raw []byte, force bool) (string, error) {
	addr, err := s.CraftAddr(slot)
	if err != nil {
		return "", err
	}
	timeout := FlashTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	fmt.Fprintf(s.log, "slot %d: flashing %d bytes through the craft port %s\n", slot, len(raw), addr)
	// Until the firmware's update service listens (a few seconds after the prompt), the
	// craft port's forward accepts and the guest resets the connection: no answer. Such
	// attempts are repeated for a while; an answer, even a refusal, is final.
	retryUntil := time.Now().Add(min(timeout, time.Minute))
	var answer string
	for {
		answer, err = update.Send(addr, raw, force, timeout)
		if err == nil || answer != "" || time.Now().After(retryUntil) || ctx.Err() != nil {
			break
		}
		if _, verr := s.vmOf(slot); verr != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		fmt.Fprintf(s.log, "slot %d: flash refused: %v\n", slot, err)
		return answer, fmt.Errorf("shelf: slot %d: flash: %w", slot, err)
	}
	fmt.Fprintf(s.log, "slot %d: %s\n", slot, answer)
	return answer, nil
}

// Reboot reboots a blade from its console (so a staged trial boots) and waits until the
// next boot has reached its prompt.
func (s *Shelf) Reboot(ctx context.Context, slot int) error {
	n := s.Boots(slot)
	v, err := s.vmOf(slot)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	// The blade may reset before its prompt comes back: no answer is no error here.
	_, err = v.Console().Exec(rctx, "reboot")
	cancel()
	var ce *vm.CommandError
	if errors.As(err, &ce) {
		return err
	}
	return s.WaitBoot(ctx, slot, n+1)
}

// haStatus is the part of `show ha json` the upgrade needs.
type haStatus struct {
	InQuorum bool `json:"in_quorum"`
	Groups   []struct {
		Name  string `json:"name"`
		Units []struct {
			Name  string `json:"name"`
			Node  int    `json:"node"`
			State string `json:"state"`
			Oper  string `json:"oper"`
		} `json:"units"`
	} `json:"groups"`
}

// unitState is slot's own view of its unit in group: in quorum, and its HA state. A unit
// whose components are not ready (a checkpoint replica not in sync: the readiness gate) is
// reported as "standby/not-ready", not as "standby": it cannot take over yet, so the upgrade
// must not switch over to it, nor take down the other blade.
func (s *Shelf) unitState(ctx context.Context, slot int, group string) (bool, string, error) {
	ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := s.Exec(ectx, slot, "show ha json")
	if err != nil {
		return false, "", err
	}
	var st haStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return false, "", fmt.Errorf("slot %d: show ha json: %w", slot, err)
	}
	for _, g := range st.Groups {
		for _, u := range g.Units {
			if g.Name == group && u.Node == slot {
				if u.Oper != "" && u.Oper != "in-service" {
					return st.InQuorum, u.State + "/" + u.Oper, nil
				}
				return st.InQuorum, u.State, nil
			}
		}
	}
	return st.InQuorum, "", fmt.Errorf("slot %d: no unit of group %s in show ha", slot, group)
}

// imageStatus is the part of `show image json` the upgrade needs.
type imageStatus struct {
	Active string `json:"active"`
	State  string `json:"trial_state"`
	Banks  []struct {
		Bank    string `json:"bank"`
		Version string `json:"version"`
	} `json:"banks"`
}

// RunningVersion returns the active bank of a blade and the version it holds, from `show
// image json`, and whether a trial is still open.
func (s *Shelf) RunningVersion(ctx context.Context, slot int) (bank, version string, trial bool, err error) {
	ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := s.Exec(ectx, slot, "show image json")
	if err != nil {
		return "", "", false, err
	}
	var st imageStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return "", "", false, fmt.Errorf("slot %d: show image json: %w", slot, err)
	}
	for _, b := range st.Banks {
		if b.Bank == st.Active {
			version = b.Version
		}
	}
	return st.Active, version, st.State != "none", nil
}

// Group is the HA service group a role's blades form.
func Group(role topology.Role) string {
	if role == topology.EPON {
		return "olt"
	}
	return string(role)
}

// UpgradeStep is one step of a rolling upgrade, for the report.
type UpgradeStep struct {
	Slot int
	What string
	Took time.Duration
}

// poll calls cond every 200 ms until it returns nil or ctx ends.
func poll(ctx context.Context, what string, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Upgrade is a rolling upgrade of the protected pair of blades of a role (2N): flash and
// reboot the standby, wait until it runs the new image confirmed and is back in the quorum
// as standby, switch the service over to it, then flash and reboot the other blade the same
// way. The service moves once, by an orderly switchover. Progress goes to log.
func (s *Shelf) Upgrade(ctx context.Context, role topology.Role, raw []byte, log io.Writer) ([]UpgradeStep, error) {
	var slots []int
	for _, b := range s.topo.Blades {
		if b.Role == role {
			slots = append(slots, b.Slot)
		}
	}
	if len(slots) != 2 {
		return nil, fmt.Errorf("shelf: upgrade %s: %d blades of that role; a rolling upgrade needs a protected pair (use flash --reboot)", role, len(slots))
	}
	group := Group(role)
	var steps []UpgradeStep
	step := func(slot int, what string, f func() error) error {
		fmt.Fprintf(log, "upgrade %s: slot %d: %s\n", role, slot, what)
		t0 := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("shelf: upgrade %s: slot %d: %s: %w", role, slot, what, err)
		}
		steps = append(steps, UpgradeStep{Slot: slot, What: what, Took: time.Since(t0)})
		return nil
	}
	// Which blade is active: both must agree before anything is touched.
	var active, standby int
	err := poll(ctx, "one active and one standby in the quorum", func() error {
		states := map[int]string{}
		for _, sl := range slots {
			q, st, err := s.unitState(ctx, sl, group)
			if err != nil {
				return err
			}
			if !q {
				return fmt.Errorf("slot %d not in quorum", sl)
			}
			states[sl] = st
		}
		a, b := slots[0], slots[1]
		switch {
		case states[a] == "active" && states[b] == "standby":
			active, standby = a, b
		case states[b] == "active" && states[a] == "standby":
			active, standby = b, a
		default:
			return fmt.Errorf("group %s: slot %d %s, slot %d %s", group, a, states[a], b, states[b])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shelf: upgrade %s: %w", role, err)
	}
	fmt.Fprintf(log, "upgrade %s: group %s active on slot %d, standby on slot %d\n", role, group, active, standby)

	upgradeOne := func(slot int) error {
		var bank string
		if err := step(slot, "flash", func() error {
			answer, err := s.Flash(ctx, slot, raw, false)
			if err == nil {
				fmt.Sscanf(answer, "ok bank %s", &bank)
			}
			return err
		}); err != nil {
			return err
		}
		if err := step(slot, "reboot into the trial", func() error { return s.Reboot(ctx, slot) }); err != nil {
			return err
		}
		return step(slot, "trial confirmed, back in quorum as standby", func() error {
			return poll(ctx, "confirmed standby", func() error {
				b, _, trial, err := s.RunningVersion(ctx, slot)
				if err != nil {
					return err
				}
				if trial || b != bank {
					return fmt.Errorf("active bank %s (trial open %v), want bank %s confirmed", b, trial, bank)
				}
				q, st, err := s.unitState(ctx, slot, group)
				if err != nil {
					return err
				}
				if !q || st != "standby" {
					return fmt.Errorf("in quorum %v, state %q", q, st)
				}
				return nil
			})
		})
	}
	if err := upgradeOne(standby); err != nil {
		return steps, err
	}
	if err := step(active, "switchover to slot "+fmt.Sprint(standby), func() error {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := s.Exec(sctx, active, "ha switchover "+group)
		cancel()
		if err != nil {
			return err
		}
		return poll(ctx, "switchover", func() error {
			if _, st, err := s.unitState(ctx, standby, group); err != nil || st != "active" {
				return fmt.Errorf("slot %d: %q, %v", standby, st, err)
			}
			if _, st, err := s.unitState(ctx, active, group); err != nil || st != "standby" {
				return fmt.Errorf("slot %d: %q, %v", active, st, err)
			}
			return nil
		})
	}); err != nil {
		return steps, err
	}
	if err := upgradeOne(active); err != nil {
		return steps, err
	}
	fmt.Fprintf(log, "upgrade %s: done; group %s active on slot %d\n", role, group, standby)
	return steps, nil
}
