package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/vm"
)

// detachKey ends an interactive console session: Ctrl-] as in telnet.
const detachKey = 0x1d

var (
	rawMu    sync.Mutex
	rawState *term.State
)

func restoreTerminal() {
	rawMu.Lock()
	defer rawMu.Unlock()
	if rawState != nil {
		term.Restore(int(os.Stdin.Fd()), rawState)
		rawState = nil
	}
}

// interact connects the terminal to a console: keys go to w, output from r
// comes to stdout, until Ctrl-] (or the console ends).
func interact(slot int, r io.Reader, w io.Writer) error {
	fd := int(os.Stdin.Fd())
	fmt.Printf("connected to the console of slot %d; detach with Ctrl-]\n", slot)
	if term.IsTerminal(fd) {
		st, err := term.MakeRaw(fd)
		if err != nil {
			return err
		}
		rawMu.Lock()
		rawState = st
		rawMu.Unlock()
		defer restoreTerminal()
	}
	done := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, r)
		close(done)
	}()
	w.Write([]byte("\r")) // show a fresh prompt
	keys := make(chan []byte)
	go func() {
		b := make([]byte, 256)
		for {
			n, err := os.Stdin.Read(b)
			if err != nil {
				close(keys)
				return
			}
			keys <- append([]byte(nil), b[:n]...)
		}
	}()
	for {
		select {
		case <-done:
			restoreTerminal()
			fmt.Println("\nconsole closed")
			return nil
		case k, ok := <-keys:
			if !ok {
				return nil
			}
			if i := strings.IndexByte(string(k), detachKey); i >= 0 {
				w.Write(k[:i])
				restoreTerminal()
				fmt.Println("\ndetached")
				return nil
			}
			if _, err := w.Write(k); err != nil {
				return err
			}
		}
	}
}

const promptHelp = `commands:
  status                 the status table
  console N              interactive console of slot N (detach: Ctrl-])
  exec N COMMAND...      run a console command on slot N
  kill N                 pull blade N
  restart N              reinsert and boot blade N
  hang N | resume N      stop / continue blade N's CPU
  cut N PORT | mend N PORT   cut / repair a channel (e.g. cut 3 base0)
  flash N FILE [--force] [--reboot]   send a signed image to blade N's craft port
  upgrade ROLE FILE      rolling upgrade of a protected pair (mgmt, switch)
  help                   this text
  quit                   stop every blade and exit (also Ctrl-D, Ctrl-C)
`

// prompt is the interactive shelf> prompt of a foreground `shelf up`.
func prompt(s *shelf.Shelf) {
	fmt.Print("type help for commands\n")
	in := bufio.NewReader(os.Stdin)
	for {
		fmt.Print("shelf> ")
		line, err := in.ReadString('\n')
		if err != nil {
			fmt.Println()
			return // Ctrl-D
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "quit" || f[0] == "exit" {
			return
		}
		if err := promptCommand(s, f); err != nil {
			fmt.Println("error:", err)
		}
	}
}

func promptCommand(s *shelf.Shelf, f []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	need := func(n int, use string) error {
		if len(f) < n {
			return errors.New("usage: " + use)
		}
		return nil
	}
	slot := func() (int, error) { return slotArg(f[1]) }
	switch f[0] {
	case "help", "?":
		fmt.Print(promptHelp)
	case "status":
		st := s.Status(ctx)
		if len(f) > 1 && f[1] == "json" {
			b, _ := json.MarshalIndent(st, "", "  ")
			fmt.Println(string(b))
			return nil
		}
		st.WriteTable(os.Stdout)
	case "console":
		if err := need(2, "console N"); err != nil {
			return err
		}
		n, err := slot()
		if err != nil {
			return err
		}
		v, err := s.VM(n)
		if err != nil {
			return err
		}
		pr, pw := io.Pipe()
		detach, err := v.Console().Attach(pw)
		if err != nil {
			return err
		}
		defer detach()
		defer pw.Close()
		return interact(n, pr, v.Console())
	case "exec":
		if err := need(3, "exec N COMMAND..."); err != nil {
			return err
		}
		n, err := slot()
		if err != nil {
			return err
		}
		out, err := s.Exec(ctx, n, strings.Join(f[2:], " "))
		if out != "" {
			fmt.Println(out)
		}
		var ce *vm.CommandError
		if errors.As(err, &ce) {
			return nil // already printed
		}
		return err
	case "kill", "restart", "hang", "resume":
		if err := need(2, f[0]+" N"); err != nil {
			return err
		}
		n, err := slot()
		if err != nil {
			return err
		}
		switch f[0] {
		case "kill":
			return s.Kill(ctx, n)
		case "restart":
			if err := s.Restart(ctx, n); err != nil {
				return err
			}
			v, err := s.VM(n)
			if err != nil {
				return err
			}
			fmt.Printf("slot %d booting...\n", n)
			_ = v
			if err := s.WaitBoot(ctx, n, 1); err != nil {
				return err
			}
			fmt.Printf("slot %d up\n", n)
		case "hang":
			return s.Hang(ctx, n)
		case "resume":
			return s.Resume(ctx, n)
		}
	case "flash", "upgrade":
		req := shelf.Request{Op: f[0]}
		var pos []string
		for _, w := range f[1:] {
			switch w {
			case "--force", "-force":
				req.Force = true
			case "--reboot", "-reboot":
				req.Reboot = true
			default:
				pos = append(pos, w)
			}
		}
		if len(pos) != 2 {
			return errors.New("usage: flash N FILE [--force] [--reboot] | upgrade ROLE FILE")
		}
		if f[0] == "flash" {
			n, err := slotArg(pos[0])
			if err != nil {
				return err
			}
			req.Slot = n
		} else {
			req.Role = pos[0]
		}
		req.File = pos[1]
		lctx, lcancel := context.WithTimeout(context.Background(), shelf.LongOpTimeout)
		defer lcancel()
		return s.FlashOp(lctx, req, os.Stdout)
	case "cut", "mend":
		if err := need(3, f[0]+" N PORT"); err != nil {
			return err
		}
		n, err := slot()
		if err != nil {
			return err
		}
		if f[0] == "cut" {
			return s.Cut(ctx, n, f[2])
		}
		return s.Mend(ctx, n, f[2])
	default:
		return fmt.Errorf("unknown command %q (try help)", f[0])
	}
	return nil
}
