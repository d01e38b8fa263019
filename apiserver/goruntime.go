package apiserver

import (
	"fmt"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"
)

// The Go runtime settings are process-wide. Run applies them and restores
// the previous values when it returns, so an in-process caller (a test) gets
// its process back as it was. The environment (GOGC, GOMEMLIMIT) wins over
// the flags, as it would for any Go program.

// setMemoryLimit applies --memory-limit; the returned func restores the old limit.
func (c *completedConfig) setMemoryLimit(logger klog.Logger) (restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" || c.memoryLimit <= 0 {
		return func() {}
	}
	prev := debug.SetMemoryLimit(c.memoryLimit)
	logger.V(1).Info("Set Go memory limit", "bytes", c.memoryLimit)
	return func() { debug.SetMemoryLimit(prev) }
}

// tightenGC applies --gc-percent once the control plane is ready and hands
// the memory start-up no longer needs back to the OS. Start-up runs at Go's
// default GC target: it allocates a lot (API routes, OpenAPI specs) and a
// tight target there costs seconds of start-up for nothing, since the peak
// is short. The returned func restores the old target.
func (c *completedConfig) tightenGC(logger klog.Logger) (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	prev := debug.SetGCPercent(c.opts.GCPercent)
	debug.FreeOSMemory()
	logger.V(1).Info("Set Go GC target", "percent", c.opts.GCPercent)
	return func() { debug.SetGCPercent(prev) }
}

func parseMemoryLimit(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 {
		return 0, fmt.Errorf("invalid --memory-limit %q: want a quantity like 120Mi, or 0", s)
	}
	return q.Value(), nil
}
