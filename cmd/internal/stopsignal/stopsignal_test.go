package stopsignal

import (
	"context"
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
