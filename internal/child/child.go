package child

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrKilled is returned (wrapped) by Stop when the process ignored SIGTERM
// for the whole grace period and had to be killed.
var ErrKilled = errors.New("did not stop in time and was killed")

// Process is a supervised child process.
type Process struct {
	Name    string
	Args    []string
	LogFile string // dir/<name>.log, appended to
	Started time.Time

	cmd      *exec.Cmd
	done     chan struct{}
	err      error // valid once done is closed
	stopping atomic.Bool
}

// Start runs binary with args, its output appended to dir/<name>.log. onExit,
// if set, is called once the process exits on its own (not after Stop) with
// the reason; a clean exit is reported as an error too, since a supervised
// child is not supposed to end.
func Start(dir, name, binary string, args []string, onExit func(*Process, error)) (*Process, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "\n==== %s starting %s %q\n", time.Now().Format(time.RFC3339), binary, args)
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Args: args, LogFile: logPath, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exited with status 0")
		}
		p.err = err
		logFile.Close()
		close(p.done)
		if onExit != nil && !p.stopping.Load() {
			onExit(p, err)
		}
	}()
	return p, nil
}

// Pid is the process ID (also its process group ID).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is why the process exited; valid once Done is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the process group and waits up to grace before
// SIGKILL (then the error wraps ErrKilled). Safe on a nil process and on one
// that already exited.
func (p *Process) Stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	p.stopping.Store(true)
	if !p.Running() {
		return nil
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) %w after %s", p.Name, p.Pid(), ErrKilled, grace)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) could not be killed", p.Name, p.Pid())
	}
}

// ExitedOnItsOwn reports whether the process has exited without Stop being called.
func (p *Process) ExitedOnItsOwn() bool {
	return !p.Running() && !p.stopping.Load()
}
