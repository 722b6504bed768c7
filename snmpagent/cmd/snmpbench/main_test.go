package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cgoa/cgoa/snmpagent"
	"github.com/gosnmp/gosnmp"
)

// The load generator against our agent in-process: every metric yields
// responses that decode as the expected answers, at a non-zero rate.
func TestLoadAgainstAgent(t *testing.T) {
	a, err := snmpagent.New(snmpagent.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_ = a.VACM().AddView(snmpagent.ViewFamily{View: "all", Subtree: snmpagent.MustOID("1")})
	_ = a.VACM().AddAccess(snmpagent.Access{Group: "ro", Level: snmpagent.AuthPriv, Read: "all"})
	if err := a.AddCommunity(snmpagent.Community{Name: community}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddUser(snmpagent.User{Name: user, Auth: gosnmp.SHA256, AuthPassphrase: authPass, Priv: gosnmp.AES, PrivPassphrase: privPass, Group: "ro"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p := &peer{name: "ours", addr: a.Addr()}
	for _, metric := range []string{"v2c.get", "v2c.getbulk", "v3.get"} {
		msgs, check, err := requests(p, metric, 8)
		if err != nil {
			t.Fatalf("requests(%s) = %v", metric, err)
		}
		before := a.Counters().InPkts
		rate, _, seen, err := load(p.addr, msgs, 4, 20*time.Millisecond, 200*time.Millisecond, nil)
		if err != nil || rate <= 0 {
			t.Fatalf("load(%s) = %v, %v; want a positive rate", metric, rate, err)
		}
		for _, m := range seen {
			if err := check(m); err != nil {
				t.Errorf("check(%s response) = %v", metric, err)
			}
		}
		// The check tells a report from an answer.
		if err := check(msgs[0]); err == nil {
			t.Errorf("check(%s request) = nil, want an error", metric)
		}
		if got := a.Counters().InPkts - before; float64(got) < rate*0.1 {
			t.Errorf("%s: agent saw %d requests for a rate of %.0f/s over 0.2 s", metric, got, rate)
		}
	}
	if median([]float64{3, 1, 2}) != 2 || median([]float64{4, 1, 2, 3}) != 2.5 {
		t.Errorf("median wrong")
	}
}

// processCPU reads a process's CPU time: this process's grows while it computes.
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := uint64(1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i := 0; i < 1e6; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		after, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after < before {
			t.Fatalf("processCPU went backward: %v then %v", before, after)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processCPU stayed at %v while computing for 10 s (%d)", before, x)
		}
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Error("processCPU(no such process) = nil error")
	}
}
