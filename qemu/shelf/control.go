package shelf

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// Request is one control-socket request (one JSON line).
type Request struct {
	Op   string `json:"op"` // status, exec, console, kill, restart, hang, resume, cut, mend, down, flash, upgrade
	Slot int    `json:"slot,omitempty"`
	Port string `json:"port,omitempty"`
	Line string `json:"line,omitempty"`
	// File is an image file (absolute path) for flash and upgrade; Role names the blades
	// of an upgrade; Force flashes an older version; Reboot boots a flashed image at once.
	File   string `json:"file,omitempty"`
	Role   string `json:"role,omitempty"`
	Force  bool   `json:"force,omitempty"`
	Reboot bool   `json:"reboot,omitempty"`
	// TimeoutMS bounds exec; default 30 s.
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

// Response is the reply (one JSON line). For "console" an OK reply is
// followed by the raw console stream both ways until either side closes.
type Response struct {
	OK       bool    `json:"ok"`
	Error    string  `json:"error,omitempty"`
	Output   string  `json:"output,omitempty"`
	CmdError bool    `json:"cmd_error,omitempty"` // the blade answered "error: ..."
	Status   *Status `json:"status,omitempty"`
}

// ControlPath is the control socket of a run directory.
func ControlPath(runDir string) string { return filepath.Join(runDir, "control.sock") }

// PidPath holds the supervisor's pid.
func PidPath(runDir string) string { return filepath.Join(runDir, "supervisor.pid") }

// Server serves a shelf's control socket.
type Server struct {
	shelf *Shelf
	ln    net.Listener
	down  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// Serve listens on the run directory's control socket. Down() is closed
// when a client asks for "down".
func Serve(s *Shelf) (*Server, error) {
	path := ControlPath(s.runDir)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("shelf: %s is already served by a running shelf (pid %s); run `shelf down` first", path, readPid(s.runDir))
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("shelf: %w", err)
	}
	if err := os.WriteFile(PidPath(s.runDir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		ln.Close()
		return nil, fmt.Errorf("shelf: %w", err)
	}
	srv := &Server{shelf: s, ln: ln, down: make(chan struct{})}
	srv.wg.Add(1)
	go srv.accept()
	return srv, nil
}

func readPid(runDir string) string {
	b, _ := os.ReadFile(PidPath(runDir))
	return strings.TrimSpace(string(b))
}

// Down is closed when a client requested "down".
func (srv *Server) Down() <-chan struct{} { return srv.down }

// Close stops serving and removes the socket and pid file.
func (srv *Server) Close() error {
	err := srv.ln.Close()
	srv.wg.Wait()
	os.Remove(ControlPath(srv.shelf.runDir))
	os.Remove(PidPath(srv.shelf.runDir))
	return err
}

func (srv *Server) accept() {
	defer srv.wg.Done()
	for {
		c, err := srv.ln.Accept()
		if err != nil {
			return
		}
		go srv.handle(c)
	}
}

const maxRequest = 64 << 10

func (srv *Server) handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(io.LimitReader(c, maxRequest))
	line, err := r.ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	enc := json.NewEncoder(c)
	if err := json.Unmarshal(line, &req); err != nil {
		enc.Encode(Response{Error: fmt.Sprintf("bad request: %v", err)})
		return
	}
	if req.Op == "console" {
		srv.console(c, r, req)
		return
	}
	enc.Encode(srv.do(req))
	if req.Op == "down" {
		srv.once.Do(func() { close(srv.down) })
	}
}

// LongOpTimeout bounds flash (with its reboot) and upgrade requests.
const LongOpTimeout = 30 * time.Minute

func (srv *Server) do(req Request) Response {
	s := srv.shelf
	d := 60 * time.Second
	if req.Op == "flash" || req.Op == "upgrade" {
		d = LongOpTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var err error
	switch req.Op {
	case "status":
		st := s.Status(ctx)
		return Response{OK: true, Status: &st}
	case "exec":
		d := 30 * time.Second
		if req.TimeoutMS > 0 {
			d = time.Duration(req.TimeoutMS) * time.Millisecond
		}
		ectx, ecancel := context.WithTimeout(ctx, d)
		defer ecancel()
		out, err := s.Exec(ectx, req.Slot, req.Line)
		var ce *vm.CommandError
		if errors.As(err, &ce) {
			return Response{OK: true, Output: out, CmdError: true}
		}
		if err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true, Output: out}
	case "kill":
		err = s.Kill(ctx, req.Slot)
	case "restart":
		err = s.Restart(ctx, req.Slot)
	case "hang":
		err = s.Hang(ctx, req.Slot)
	case "resume":
		err = s.Resume(ctx, req.Slot)
	case "cut":
		err = s.Cut(ctx, req.Slot, req.Port)
	case "mend":
		err = s.Mend(ctx, req.Slot, req.Port)
	case "flash", "upgrade":
		var out strings.Builder
		err := s.FlashOp(ctx, req, &out)
		if err != nil {
			return Response{Error: err.Error(), Output: out.String()}
		}
		return Response{OK: true, Output: out.String()}
	case "down":
		return Response{OK: true}
	default:
		return Response{Error: fmt.Sprintf("unknown op %q", req.Op)}
	}
	if err != nil {
		return Response{Error: err.Error()}
	}
	return Response{OK: true}
}

// FlashOp carries out a flash or upgrade request (the control socket's and the shelf>
// prompt's), writing progress lines to out.
func (s *Shelf) FlashOp(ctx context.Context, req Request, out io.Writer) error {
	raw, err := os.ReadFile(req.File)
	if err != nil {
		return fmt.Errorf("shelf: %w", err)
	}
	if req.Op == "upgrade" {
		role := topology.Role(req.Role)
		known := false
		for _, r := range topology.Roles {
			known = known || r == role
		}
		if !known {
			return fmt.Errorf("shelf: unknown role %q (want switch, mgmt or epon)", req.Role)
		}
		t0 := time.Now()
		steps, err := s.Upgrade(ctx, role, raw, out)
		for _, st := range steps {
			fmt.Fprintf(out, "  slot %d: %-45s %6.1fs\n", st.Slot, st.What, st.Took.Seconds())
		}
		if err == nil {
			fmt.Fprintf(out, "upgrade of %s done in %.1fs\n", role, time.Since(t0).Seconds())
		}
		return err
	}
	answer, err := s.Flash(ctx, req.Slot, raw, req.Force)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "slot %d: %s\n", req.Slot, answer)
	if !req.Reboot {
		fmt.Fprintf(out, "slot %d: the new image boots on trial at the next reboot\n", req.Slot)
		return nil
	}
	if err := s.Reboot(ctx, req.Slot); err != nil {
		return err
	}
	b := s.LastBoot(req.Slot)
	fmt.Fprintf(out, "slot %d: rebooted: bank %v, %s %s (%s)\n", req.Slot, b.Bank, b.Header.Role, b.Header.Version, b.Reason)
	return nil
}

// console bridges the connection to a blade's serial console.
func (srv *Server) console(c net.Conn, r *bufio.Reader, req Request) {
	enc := json.NewEncoder(c)
	v, err := srv.shelf.VM(req.Slot)
	if err != nil {
		enc.Encode(Response{Error: err.Error()})
		return
	}
	// The reply line must precede console bytes: hold console output until
	// it is written.
	gate := &gatedWriter{w: c, ready: make(chan struct{})}
	detach, err := v.Console().Attach(gate)
	if err != nil {
		enc.Encode(Response{Error: err.Error()})
		return
	}
	defer detach()
	enc.Encode(Response{OK: true})
	close(gate.ready)
	io.Copy(v.Console(), r)
	// Erase a half-typed line (Ctrl-U) so the next exec starts clean.
	v.Console().Write([]byte{0x15})
}

// Client talks to a running shelf's control socket.
type Client struct {
	RunDir string
}

// Call sends one request and reads the reply.
func (cl Client) Call(ctx context.Context, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", ControlPath(cl.RunDir))
	if err != nil {
		return Response{}, fmt.Errorf("shelf: no running shelf in %s (start one with `shelf up`): %w", cl.RunDir, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, fmt.Errorf("shelf: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("shelf: reading reply: %w", err)
	}
	if !resp.OK {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// Console opens an interactive console stream on a slot.
func (cl Client) Console(ctx context.Context, slot int) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", ControlPath(cl.RunDir))
	if err != nil {
		return nil, fmt.Errorf("shelf: no running shelf in %s: %w", cl.RunDir, err)
	}
	if err := json.NewEncoder(c).Encode(Request{Op: "console", Slot: slot}); err != nil {
		c.Close()
		return nil, err
	}
	// Read the reply line byte by byte so no console bytes are swallowed.
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			c.Close()
			return nil, fmt.Errorf("shelf: console reply: %w", err)
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil || !resp.OK {
		c.Close()
		if err == nil {
			err = errors.New(resp.Error)
		}
		return nil, err
	}
	return c, nil
}

type gatedWriter struct {
	w     io.Writer
	ready chan struct{}
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.ready
	return g.w.Write(p)
}
