package blade

import "testing"

func TestLogRing(t *testing.T) {
	l := NewLog(3, nil)
	for i := 0; i < 5; i++ {
		l.Printf("m%d", i)
	}
	got, total := l.Last(0)
	if total != 5 || len(got) != 3 || got[0].Msg != "m2" || got[2].Msg != "m4" {
		t.Errorf("Last(0) = %v, %d; want m2..m4 of 5", got, total)
	}
	got, _ = l.Last(2)
	if got[0].Msg+" "+got[1].Msg != "m3 m4" {
		t.Errorf("Last(2) = %v, want m3 m4", got)
	}
	l2 := NewLog(4, nil)
	l2.Errorf("only")
	got, _ = l2.Last(10)
	if len(got) != 1 || got[0].Level != "error" {
		t.Errorf("Last(10) on a part-filled ring = %v", got)
	}
}
