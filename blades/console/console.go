// Package console is the blade's command-line interface: the serial console of a blade (ttyS0)
// and the same CLI over stdio or a unix socket in process mode.
//
// Commands are registered by words ("show", "version") with a usage line. A command is either
// a view, which returns data that prints as text or, with a final word "json", as one JSON
// object, or an action, which writes its own output. Every failure prints one line starting
// "error: " followed by a "usage: " line; unknown commands and bad arguments never crash the
// console, and a panicking command is recovered and reported.
//
//	c := console.New()
//	c.View([]string{"show", "version"}, "", "firmware version", 0, 0,
//		func(args []string) (any, error) { return v, nil }, printVersion)
//	c.Serve(rw, "mgmt-s3> ") // returns at EOF
package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/term"
)

// ErrUsage marks an error in how a command was called; the console prints the usage after it.
var ErrUsage = errors.New("bad arguments")

// Command is one registered command.
type Command struct {
	Words   []string // the fixed words that select it, e.g. ["show", "ports"]
	Args    string   // usage of the arguments after the words, e.g. "SLOT PORT"
	Help    string
	MinArgs int
	MaxArgs int // -1: any number

	// View returns data: printed by Text, or as JSON when the line ends in "json".
	View func(args []string) (any, error)
	Text func(w io.Writer, v any)
	// Do runs an action and writes its own output.
	Do func(w io.Writer, args []string) error
}

// Usage is the command's usage line.
func (c *Command) Usage() string {
	u := strings.Join(c.Words, " ")
	if c.Args != "" {
		u += " " + c.Args
	}
	if c.View != nil {
		u += " [json]"
	}
	return u
}

// Console holds the commands and the counters shared by all sessions.
type Console struct {
	mu       sync.RWMutex
	commands []*Command
	// Errors counts command lines that failed (unknown, bad arguments, command errors).
	Errors atomic.Uint64
	// Lines counts command lines run.
	Lines atomic.Uint64
	// OnPanic is told about a recovered panic (the blade logs it).
	OnPanic func(line string, v any, stack []byte)
}

// New returns a console with the built-in "help" command.
func New() *Console {
	c := &Console{}
	c.Action([]string{"help"}, "", "list commands", 0, 0, func(w io.Writer, _ []string) error {
		c.mu.RLock()
		defer c.mu.RUnlock()
		cmds := append([]*Command{}, c.commands...)
		sort.Slice(cmds, func(i, j int) bool { return cmds[i].Usage() < cmds[j].Usage() })
		for _, cmd := range cmds {
			fmt.Fprintf(w, "  %-36s %s\n", cmd.Usage(), cmd.Help)
		}
		return nil
	})
	return c
}

// Register adds a command. Words must be unique.
func (c *Console) Register(cmd *Command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, have := range c.commands {
		if strings.Join(have.Words, " ") == strings.Join(cmd.Words, " ") {
			panic(fmt.Sprintf("console: command %q registered twice", strings.Join(cmd.Words, " ")))
		}
	}
	c.commands = append(c.commands, cmd)
}

// View registers a view command.
func (c *Console) View(words []string, args, help string, minArgs, maxArgs int, view func([]string) (any, error), text func(io.Writer, any)) {
	c.Register(&Command{Words: words, Args: args, Help: help, MinArgs: minArgs, MaxArgs: maxArgs, View: view, Text: text})
}

// Action registers an action command.
func (c *Console) Action(words []string, args, help string, minArgs, maxArgs int, do func(io.Writer, []string) error) {
	c.Register(&Command{Words: words, Args: args, Help: help, MinArgs: minArgs, MaxArgs: maxArgs, Do: do})
}

// lookup finds the command whose words are the longest prefix of fields.
func (c *Console) lookup(fields []string) (*Command, []string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var best *Command
	for _, cmd := range c.commands {
		if len(cmd.Words) > len(fields) || (best != nil && len(cmd.Words) <= len(best.Words)) {
			continue
		}
		match := true
		for i, w := range cmd.Words {
			if fields[i] != w {
				match = false
				break
			}
		}
		if match {
			best = cmd
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, fields[len(best.Words):]
}

// similar lists the usages of commands sharing the first word, for the error message.
func (c *Console) similar(first string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for _, cmd := range c.commands {
		if cmd.Words[0] == first {
			out = append(out, cmd.Usage())
		}
	}
	sort.Strings(out)
	return out
}

// Run executes one command line, writing output (lines end in "\n") to w. It returns the error
// it printed, if any. It never panics.
func (c *Console) Run(w io.Writer, line string) (err error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	c.Lines.Add(1)
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			if c.OnPanic != nil {
				c.OnPanic(line, v, stack)
			}
			err = fmt.Errorf("internal error in %q: %v", line, v)
			fmt.Fprintf(w, "error: %v\n", err)
			c.Errors.Add(1)
		}
	}()
	cmd, args := c.lookup(fields)
	if cmd == nil {
		c.Errors.Add(1)
		err = fmt.Errorf("unknown command %q", strings.Join(fields, " "))
		fmt.Fprintf(w, "error: %v\n", err)
		if sim := c.similar(fields[0]); len(sim) > 0 {
			fmt.Fprintf(w, "usage: %s\n", strings.Join(sim, " | "))
		} else {
			fmt.Fprintf(w, "usage: type \"help\" for the list of commands\n")
		}
		return err
	}
	asJSON := false
	if cmd.View != nil && len(args) > 0 && args[len(args)-1] == "json" {
		asJSON, args = true, args[:len(args)-1]
	}
	if len(args) < cmd.MinArgs || (cmd.MaxArgs >= 0 && len(args) > cmd.MaxArgs) {
		err = fmt.Errorf("%w: %q takes %s", ErrUsage, strings.Join(cmd.Words, " "), argCount(cmd.MinArgs, cmd.MaxArgs))
		return c.fail(w, cmd, err)
	}
	if cmd.Do != nil {
		if err := cmd.Do(w, args); err != nil {
			return c.fail(w, cmd, err)
		}
		return nil
	}
	v, err := cmd.View(args)
	if err != nil {
		return c.fail(w, cmd, err)
	}
	if asJSON || cmd.Text == nil {
		b, err := json.Marshal(v)
		if err != nil {
			return c.fail(w, cmd, fmt.Errorf("encode json: %w", err))
		}
		fmt.Fprintf(w, "%s\n", b)
		return nil
	}
	cmd.Text(w, v)
	return nil
}

func (c *Console) fail(w io.Writer, cmd *Command, err error) error {
	c.Errors.Add(1)
	fmt.Fprintf(w, "error: %v\n", err)
	fmt.Fprintf(w, "usage: %s\n", cmd.Usage())
	return err
}

func argCount(lo, hi int) string {
	switch {
	case hi < 0:
		return fmt.Sprintf("at least %d argument(s)", lo)
	case lo == hi && lo == 0:
		return "no arguments"
	case lo == hi:
		return fmt.Sprintf("exactly %d argument(s)", lo)
	}
	return fmt.Sprintf("%d to %d arguments", lo, hi)
}

// Serve runs an interactive session on rw with line editing and history until EOF or a read
// error. The banner, if any, is printed first. rw should be in raw mode if it is a terminal:
// the line editor echoes and edits by itself.
func (c *Console) Serve(rw io.ReadWriter, prompt, banner string) error {
	t := term.NewTerminal(rw, prompt)
	// Serial lines have no size; a wide line keeps the editor from wrapping long commands.
	_ = t.SetSize(4096, 24)
	if banner != "" {
		if _, err := fmt.Fprintf(t, "%s\n", banner); err != nil {
			return err
		}
	}
	for {
		line, err := t.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		_ = c.Run(t, line)
	}
}
