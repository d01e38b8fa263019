package supercluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// process is a supervised child. Its output goes to logs/<name>.log.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed

	stopping atomic.Bool
}

// startProcess starts name with args, logging to logDir/<name>.log. If the
// child exits before stop is called, onExit is called with the reason.
func startProcess(ctx context.Context, logDir, name, binary string, args []string, onExit func(error)) (*process, error) {
	logger := klog.FromContext(ctx)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "\n==== %s starting %s %v\n", time.Now().Format(time.RFC3339), binary, args)
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group so a terminal Ctrl-C reaches only vnest up, which then
	// stops children in order; Pdeathsig so children never outlive a killed vnest.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	logger.V(1).Info("Started component", "component", name, "pid", cmd.Process.Pid)
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
		if onExit != nil && !p.stopping.Load() {
			onExit(fmt.Errorf("%s exited unexpectedly (%v); see %s", name, p.err, logFile.Name()))
		}
	}()
	return p, nil
}

// stop sends SIGTERM and waits up to grace before SIGKILL. It is safe to
// call on a process that already exited.
func (p *process) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	p.stopping.Store(true)
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%s did not stop within %s and was killed", p.name, grace)
	case <-time.After(10 * time.Second):
		return errors.New(p.name + " could not be killed")
	}
}
