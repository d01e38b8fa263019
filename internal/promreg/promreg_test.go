package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "A test counter."}, []string{"kind"})
}

// TestRegisterTwice: a collector made again and registered in the same registry is the first
// one, so what the second maker writes is gathered.
func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := Register(reg, newCounter())
	second := Register(reg, newCounter())
	second.WithLabelValues("pod").Inc()
	if got := testutil.ToFloat64(first.WithLabelValues("pod")); got != 1 {
		t.Errorf("the first collector reads %v, want 1: the second is not it", got)
	}
	if n, err := testutil.GatherAndCount(reg, "test_total"); err != nil || n != 1 {
		t.Errorf("gathered %d series (%v), want 1", n, err)
	}
}

// TestRegisterClash: a collector of a registered name with other labels is a programming error.
func TestRegisterClash(t *testing.T) {
	reg := prometheus.NewRegistry()
	Register(reg, newCounter())
	defer func() {
		if recover() == nil {
			t.Error("no panic for a clashing collector")
		}
	}()
	Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "A test counter."}, []string{"other"}))
}
