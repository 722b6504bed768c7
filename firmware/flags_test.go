package main

import (
	"io"
	"strings"
	"testing"
)

func TestParseProcessFlags(t *testing.T) {
	pf, err := parseProcessFlags([]string{"-shelf", "2", "-slot", "4", "-console", "unix:/tmp/x.sock", "-state", "/tmp/s"}, io.Discard)
	if err != nil || pf.shelf != 2 || pf.slot != 4 || pf.console != "unix:/tmp/x.sock" || pf.state != "/tmp/s" {
		t.Fatalf("parseProcessFlags = %+v, %v", pf, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-slot is required"},
		{[]string{"-slot", "3", "-console", "tcp:1.2.3.4:5"}, "want stdio or unix:PATH"},
		{[]string{"-slot", "3", "-console", "unix:"}, "needs a path"},
		{[]string{"-slot", "3", "extra"}, "unexpected arguments"},
		{[]string{"-slot", "three"}, "invalid value"},
	} {
		_, err := parseProcessFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseProcessFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
