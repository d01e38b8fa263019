package keylimit

import "testing"

func TestLimit(t *testing.T) {
	l := New(2)
	for i, step := range []struct {
		acquire bool // else release
		key     string
		want    bool // what Acquire answers
	}{
		{acquire: true, key: "a", want: true},
		{acquire: true, key: "a", want: true},
		{acquire: true, key: "a", want: false},
		{acquire: true, key: "b", want: true}, // another key's are its own
		{key: "a"},
		{acquire: true, key: "a", want: true}, // a release frees one
		{acquire: true, key: "a", want: false},
		{key: "a"}, {key: "a"}, {key: "b"},
	} {
		if !step.acquire {
			l.Release(step.key)
			continue
		}
		if got := l.Acquire(step.key); got != step.want {
			t.Fatalf("step %d: Acquire(%q) = %v, want %v", i, step.key, got, step.want)
		}
	}
	if len(l.n) != 0 {
		t.Errorf("counts left after every release: %v", l.n)
	}
}
