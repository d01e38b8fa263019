package child

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	dir := t.TempDir()
	exited := make(chan error, 1)
	p, err := Start(dir, "sleeper", "sh", []string{"-c", "echo hello; exec sleep 60"}, func(_ *Process, err error) { exited <- err })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if p.Running() {
		t.Fatal("still running after Stop")
	}
	select {
	case err := <-exited:
		t.Fatalf("onExit called after Stop: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if log, _ := os.ReadFile(p.LogFile); !strings.Contains(string(log), "hello") {
		t.Fatalf("log %s lacks the child's output: %q", p.LogFile, log)
	}
}

func TestUnexpectedExitIsReported(t *testing.T) {
	exited := make(chan error, 1)
	if _, err := Start(t.TempDir(), "quitter", "sh", []string{"-c", "exit 3"}, func(_ *Process, err error) { exited <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(err.Error(), "3") {
			t.Fatalf("onExit error = %v, want exit status 3", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("onExit not called")
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	p, err := Start(t.TempDir(), "stubborn", "sh", []string{"-c", "trap '' TERM; while :; do sleep 0.1; done"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	if err := p.Stop(300 * time.Millisecond); !errors.Is(err, ErrKilled) {
		t.Fatalf("Stop = %v, want ErrKilled", err)
	}
}
