package clock

import (
	"testing"
	"time"
)

func TestNowIsMonotonicAndNearWall(t *testing.T) {
	a := Now()
	b := Now()
	if b.Before(a) {
		t.Fatalf("clock went backwards: %v then %v", a, b)
	}
	if d := time.Since(a); d < 0 || d > time.Minute {
		t.Fatalf("Now is %v away from the wall clock", d)
	}
	if Start().After(a) {
		t.Fatalf("Start %v is after Now %v", Start(), a)
	}
}
