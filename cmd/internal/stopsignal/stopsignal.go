package stopsignal

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Context returns a copy of parent that is cancelled on the first stop signal, and the function
// that stops listening for them (after which a signal has its default action again).
func Context(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, signals()...)
}

// signals are the signals Context stops on.
func signals() []os.Signal {
	s := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	// Notify would install a handler for an ignored SIGHUP too, and nohup would stop working.
	if !signal.Ignored(syscall.SIGHUP) {
		s = append(s, syscall.SIGHUP)
	}
	return s
}
