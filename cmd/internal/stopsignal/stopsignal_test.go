package stopsignal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestHangupStops: SIGHUP (a closed terminal) stops the command through its context like
// SIGINT, instead of ending the process at once without its clean stop.
func TestHangupStops(t *testing.T) {
	ctx, stop := Context(t.Context())
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP did not stop the context")
	}
}

// TestHangupIgnoredStaysIgnored: under nohup (SIGHUP ignored from the start) a hangup stops
// nothing.
func TestHangupIgnoredStaysIgnored(t *testing.T) {
	signal.Ignore(syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	ctx, stop := Context(context.Background())
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
		t.Fatal("an ignored SIGHUP stopped the context")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestSecondSignalEnds: the second stop signal ends the process at once (its default action), so
// a clean stop that hangs can be cut short. Run in a child process, which the signal kills.
func TestSecondSignalEnds(t *testing.T) {
	if os.Getenv("STOPSIGNAL_CHILD") == "1" {
		ctx, stop := Context(context.Background())
		defer stop()
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // the context's goroutine stops listening
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		time.Sleep(5 * time.Second)
		os.Exit(0) // still alive: the second signal was caught
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSecondSignalEnds$")
	cmd.Env = append(os.Environ(), "STOPSIGNAL_CHILD=1")
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the child after two SIGINTs: %v, want it ended by the second", err)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Fatalf("the child after two SIGINTs: %v, want it killed by SIGINT", err)
	}
}
