package manager

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// stopGrace is how long a control plane gets to stop after SIGTERM.
const stopGrace = 20 * time.Second

// process is a supervised child: its output goes to dir/<name>.log, it has
// a process group of its own (a terminal's Ctrl-C reaches the manager only,
// which then stops children in order) and dies with the manager
// (Pdeathsig), so a killed manager leaves no orphan serving a tenant.
type process struct {
	args    []string
	logFile string
	started time.Time
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // valid once done is closed

	stopping atomic.Bool
}

// startProcess starts binary with args; onExit is called once the process
// exited, unless stop was called first.
func startProcess(dir, name, binary string, args []string, onExit func(*process, error)) (*process, error) {
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
		return nil, err
	}
	p := &process{args: args, logFile: logPath, started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exited with status 0")
		}
		p.err = err
		logFile.Close()
		close(p.done)
		if !p.stopping.Load() && onExit != nil {
			onExit(p, err)
		}
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// unexpected reports whether the process exited without being stopped.
func (p *process) unexpected() bool {
	return !p.running() && !p.stopping.Load()
}

// stop sends SIGTERM to the process group and waits up to grace before
// SIGKILL. Safe on a process that already exited.
func (p *process) stop(grace time.Duration) error {
	p.stopping.Store(true)
	if !p.running() {
		return nil
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("control plane process %d could not be killed", p.pid())
	}
}

// lastLogLine is the last non-empty line of file (at most 300 bytes of it),
// usually the error a failed `vnest apiserver` printed.
func lastLogLine(file string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 4096
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		_, _ = f.Seek(st.Size()-tail, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	line := string(bytes.TrimSpace(lines[len(lines)-1]))
	if len(line) > 300 {
		line = line[len(line)-300:]
	}
	return line
}
