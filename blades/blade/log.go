package blade

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Entry is one line of the blade's log.
type Entry struct {
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
}

// Log is the blade's in-memory log: a fixed ring, so a chatty component cannot grow the
// firmware's memory. Entries are mirrored to an optional writer (stderr or a state file in
// process mode; nothing in blade mode, where the serial console belongs to the operator).
type Log struct {
	mu      sync.Mutex
	ring    []Entry
	next    int
	full    bool
	total   uint64
	mirror  io.Writer
	nowFunc func() time.Time
}

// NewLog makes a log holding the last size entries.
func NewLog(size int, mirror io.Writer) *Log {
	if size < 1 {
		size = 1
	}
	return &Log{ring: make([]Entry, size), mirror: mirror, nowFunc: time.Now}
}

// Printf logs at level "info".
func (l *Log) Printf(format string, args ...any) { l.add("info", fmt.Sprintf(format, args...)) }

// Errorf logs at level "error".
func (l *Log) Errorf(format string, args ...any) { l.add("error", fmt.Sprintf(format, args...)) }

func (l *Log) add(level, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := Entry{Time: l.nowFunc(), Level: level, Msg: msg}
	l.ring[l.next] = e
	l.next = (l.next + 1) % len(l.ring)
	if l.next == 0 {
		l.full = true
	}
	l.total++
	if l.mirror != nil {
		fmt.Fprintf(l.mirror, "%s %-5s %s\n", e.Time.UTC().Format("15:04:05.000"), level, msg)
	}
}

// Last returns up to n most recent entries, oldest first, and how many were ever logged.
func (l *Log) Last(n int) ([]Entry, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := l.next
	if l.full {
		size = len(l.ring)
	}
	if n <= 0 || n > size {
		n = size
	}
	out := make([]Entry, 0, n)
	for i := size - n; i < size; i++ {
		idx := i
		if l.full {
			idx = (l.next + i) % len(l.ring)
		}
		out = append(out, l.ring[idx])
	}
	return out, l.total
}
