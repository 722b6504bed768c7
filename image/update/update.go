// Package update is the blade's firmware update service: it receives a signed image (over the
// craft port in a blade, over any listener in tests), checks signature, role and version
// before writing anything, writes it into the inactive flash bank, and stages it for a trial
// boot. After a trial boot the firmware confirms the image once it is healthy; an image that
// never confirms is rolled back by the boot ROM (see package flash).
//
// Wire protocol (one image per connection, all lines end in "\n"):
//
//	client: "CGOA-FLASH 1 <size> <force 0|1>\n" then <size> bytes of image
//	server: "ok bank <A|B> version <v> staged\n"  or  "error: <reason>\n"
package update

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/image"
	"github.com/cgoa/cgoa/image/flash"
)

// Service is a blade's update service.
type Service struct {
	Flash   *flash.Flash
	Role    string
	Running string // the running firmware version
	Trusted []ed25519.PublicKey
	// MaxSize bounds an announced image size (the bank size).
	MaxSize int64
	// Log receives one line per update attempt.
	Log func(format string, args ...any)

	mu       sync.Mutex // one update at a time
	Accepted atomic.Uint64
	Refused  atomic.Uint64
}

// ErrBusy is returned when another update is in progress.
var ErrBusy = errors.New("update: another update is in progress")

// Install verifies raw and, only if every check passes, writes it into the inactive bank and
// stages a trial boot. It returns the bank written.
func (s *Service) Install(raw []byte, force bool) (flash.Bank, image.Header, error) {
	if !s.mu.TryLock() {
		return flash.NoBank, image.Header{}, ErrBusy
	}
	defer s.mu.Unlock()
	img, err := image.Verify(bytes.NewReader(raw), s.Trusted)
	if err != nil {
		return flash.NoBank, image.Header{}, s.refuse(err)
	}
	if err := image.Accept(img.Header, s.Role, s.Running, force); err != nil {
		return flash.NoBank, img.Header, s.refuse(err)
	}
	c, _, err := s.Flash.ReadBCB()
	if err != nil {
		return flash.NoBank, img.Header, s.refuse(err)
	}
	if c.State == flash.TrialBooting {
		return flash.NoBank, img.Header, s.refuse(errors.New("update: running an unconfirmed trial; confirm or roll back first"))
	}
	target := c.Active.Other()
	if err := s.Flash.WriteBank(target, raw); err != nil {
		return flash.NoBank, img.Header, s.refuse(err)
	}
	c, err = flash.Stage(c, target, uint64(len(raw)), sha256.Sum256(raw), img.Header.Version)
	if err == nil {
		_, err = s.Flash.WriteBCB(c)
	}
	if err != nil {
		return flash.NoBank, img.Header, s.refuse(err)
	}
	s.Accepted.Add(1)
	s.logf("update: %s %s written to bank %v, trial boot on next reboot", img.Header.Role, img.Header.Version, target)
	return target, img.Header, nil
}

func (s *Service) refuse(err error) error {
	s.Refused.Add(1)
	s.logf("update refused: %v", err)
	return err
}

func (s *Service) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(format, args...)
	}
}

// Serve answers update connections until ln is closed.
func (s *Service) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go s.handle(c)
	}
}

func (s *Service) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	size, force, err := readRequest(r, s.MaxSize)
	if err != nil {
		s.Refused.Add(1)
		fmt.Fprintf(c, "error: %v\n", err)
		return
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(r, raw); err != nil {
		s.Refused.Add(1)
		fmt.Fprintf(c, "error: %v after %d bytes: %v\n", image.ErrTruncated, size, err)
		return
	}
	bank, h, err := s.Install(raw, force)
	if err != nil {
		fmt.Fprintf(c, "error: %v\n", err)
		return
	}
	fmt.Fprintf(c, "ok bank %v version %s staged\n", bank, h.Version)
}

// readRequest parses the request line.
func readRequest(r *bufio.Reader, maxSize int64) (int64, bool, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, false, fmt.Errorf("update: reading request: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "CGOA-FLASH" || f[1] != "1" {
		return 0, false, fmt.Errorf("update: bad request %q (want \"CGOA-FLASH 1 SIZE FORCE\")", strings.TrimSpace(line))
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size <= 0 || size > maxSize {
		return 0, false, fmt.Errorf("update: size %q: want 1..%d bytes", f[2], maxSize)
	}
	if f[3] != "0" && f[3] != "1" {
		return 0, false, fmt.Errorf("update: force %q: want 0 or 1", f[3])
	}
	return size, f[3] == "1", nil
}

// Send is the client side: it sends an image to addr and returns the server's answer line.
func Send(addr string, raw []byte, force bool, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	f := 0
	if force {
		f = 1
	}
	if _, err := fmt.Fprintf(c, "CGOA-FLASH 1 %d %d\n", len(raw), f); err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	if _, err := c.Write(raw); err != nil {
		return "", fmt.Errorf("update: send image: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("update: reading answer: %w", err)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return line, errors.New(msg)
	}
	return line, nil
}

// Status is what `show image` reports.
type Status struct {
	Active   string       `json:"active"`
	Trial    string       `json:"trial"`
	State    string       `json:"trial_state"`
	Boots    uint32       `json:"boots"`
	Fallback uint32       `json:"fallbacks"`
	Banks    []BankStatus `json:"banks"`
	Accepted uint64       `json:"updates_accepted"`
	Refused  uint64       `json:"updates_refused"`
}

// BankStatus describes one bank.
type BankStatus struct {
	Bank    string `json:"bank"`
	Valid   bool   `json:"valid"`
	Version string `json:"version,omitempty"`
	Bytes   uint64 `json:"bytes"`
	Digest  string `json:"sha256,omitempty"`
}

// Status reads the boot-control block.
func (s *Service) Status() (Status, error) {
	c, _, err := s.Flash.ReadBCB()
	if err != nil {
		return Status{}, err
	}
	st := Status{Active: c.Active.String(), Trial: c.Trial.String(), State: []string{"none", "pending", "booting"}[c.State],
		Boots: c.Boots, Fallback: c.Fallback, Accepted: s.Accepted.Load(), Refused: s.Refused.Load()}
	for _, b := range []flash.Bank{flash.BankA, flash.BankB} {
		bi := c.Info(b)
		bs := BankStatus{Bank: b.String(), Valid: bi.Valid, Version: bi.Version, Bytes: bi.Length}
		if bi.Valid {
			bs.Digest = fmt.Sprintf("%x", bi.Digest[:8])
		}
		st.Banks = append(st.Banks, bs)
	}
	return st, nil
}

// Confirm confirms a booted trial.
func (s *Service) Confirm() error { return s.change(flash.Confirm) }

// Rollback cancels a trial or switches back to the other bank.
func (s *Service) Rollback() error { return s.change(flash.Rollback) }

func (s *Service) change(f func(flash.BCB) (flash.BCB, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, err := s.Flash.ReadBCB()
	if err != nil {
		return err
	}
	c, err = f(c)
	if err != nil {
		return err
	}
	_, err = s.Flash.WriteBCB(c)
	return err
}
