package supercluster

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/child"
)

// startProcess starts a component as a supervised child logging to
// logDir/<name>.log. If it exits before being stopped, onExit (when set) is
// told why.
func startProcess(ctx context.Context, logDir, name, binary string, args []string, onExit func(error)) (*child.Process, error) {
	var report func(*child.Process, error)
	if onExit != nil {
		report = func(p *child.Process, err error) {
			onExit(fmt.Errorf("%s exited unexpectedly (%v); see %s", name, err, p.LogFile))
		}
	}
	p, err := child.Start(logDir, name, binary, args, report)
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(1).Info("Started component", "component", name, "pid", p.Pid())
	return p, nil
}
