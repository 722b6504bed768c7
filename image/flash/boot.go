package flash

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrNoBootableBank is returned when neither bank holds a valid image.
var ErrNoBootableBank = errors.New("flash: no bootable bank")

// Decision is what the boot ROM boots.
type Decision struct {
	Bank   Bank
	Trial  bool   // booting a bank on trial
	Reason string // why this bank
}

// NextBoot is the boot ROM's rule, applied at every power-on or reset. It returns the bank to
// boot and the block to write back before booting:
//
//   - a pending trial is booted once (state becomes booting);
//   - a trial found still booting was not confirmed: it failed, fall back to the active bank;
//   - otherwise the active bank.
func NextBoot(c BCB) (Decision, BCB, error) {
	c.Boots++
	switch c.State {
	case TrialPending:
		if c.Info(c.Trial).Valid {
			c.State = TrialBooting
			return Decision{Bank: c.Trial, Trial: true, Reason: "trial boot of the new image"}, c, nil
		}
		c.State, c.Trial = TrialNone, NoBank
	case TrialBooting:
		failed := c.Trial
		c.State, c.Trial = TrialNone, NoBank
		c.Fallback++
		c.Info(failed).Valid = false
		if c.Active != NoBank && c.Info(c.Active).Valid {
			return Decision{Bank: c.Active, Reason: fmt.Sprintf("trial of bank %v was not confirmed: falling back", failed)}, c, nil
		}
	}
	if c.Active != NoBank && c.Info(c.Active).Valid {
		return Decision{Bank: c.Active, Reason: "active bank"}, c, nil
	}
	return Decision{}, c, ErrNoBootableBank
}

// Stage records a freshly written and verified image in bank b and asks for a trial boot.
func Stage(c BCB, b Bank, length uint64, digest [32]byte, version string) (BCB, error) {
	if b == c.Active {
		return c, fmt.Errorf("flash: cannot stage into the active bank %v", b)
	}
	*c.Info(b) = BankInfo{Valid: true, Length: length, Digest: digest, Version: version}
	c.Trial, c.State = b, TrialPending
	return c, nil
}

// Confirm makes a booted trial the active bank (the firmware calls it when healthy).
func Confirm(c BCB) (BCB, error) {
	if c.State != TrialBooting {
		return c, fmt.Errorf("flash: no trial to confirm")
	}
	c.Active, c.Trial, c.State = c.Trial, NoBank, TrialNone
	return c, nil
}

// Rollback cancels a trial (pending or booting), or, with no trial, makes the other bank
// active if it holds a valid image.
func Rollback(c BCB) (BCB, error) {
	if c.State != TrialNone {
		c.Info(c.Trial).Valid = false
		c.Trial, c.State = NoBank, TrialNone
		return c, nil
	}
	o := c.Active.Other()
	if !c.Info(o).Valid {
		return c, fmt.Errorf("flash: bank %v holds no valid image to roll back to", o)
	}
	c.Active = o
	return c, nil
}

// CheckBank reads a bank and checks it against the digest the block records.
func (f *Flash) CheckBank(c BCB, b Bank) ([]byte, error) {
	bi := c.Info(b)
	if !bi.Valid {
		return nil, fmt.Errorf("flash: bank %v is not valid", b)
	}
	img, err := f.ReadBank(b, bi.Length)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(img) != bi.Digest {
		return nil, fmt.Errorf("flash: bank %v does not match its recorded digest", b)
	}
	return img, nil
}
