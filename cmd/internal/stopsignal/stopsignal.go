package stopsignal

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Context returns a copy of parent that is cancelled on the first stop signal, and the function
// that stops listening for them. Once it is cancelled a stop signal has its default action
// again, as in Kubernetes' components: a second Ctrl-C ends a clean stop that takes too long
// (vnest up's can take minutes) at once.
func Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, signals()...)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
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
