package kubeletproxy

import (
	"errors"
	"net"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// streamEndLogger is logger, except that an error saying no more than that one end of a stream
// went away (streamEnded) is logged at V(2), as Info, not as an Error. The proxy hands it to
// upstream's UpgradeAwareHandler, which logs every failed copy of an upgraded stream at Error but
// for "use of closed network connection": an exec, attach or port-forward stream whose client or
// super apiserver closes its end while the other is writing came out as `Error proxying data
// from backend to client … write: broken pipe` (14 of them in a run of the conformance suite).
// That is how such a stream ends, nothing an operator can act on.
func streamEndLogger(logger klog.Logger) klog.Logger {
	sink := logger.GetSink()
	if sink == nil {
		return logger
	}
	if cd, ok := sink.(logr.CallDepthLogSink); ok {
		sink = cd.WithCallDepth(1) // the caller's line, not streamEndSink's
	}
	return logger.WithSink(streamEndSink{sink})
}

// streamEnded reports whether err is a write or read that failed because the other end of the
// connection is gone.
func streamEnded(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// streamEndSink is the LogSink of streamEndLogger.
type streamEndSink struct{ logr.LogSink }

func (s streamEndSink) Error(err error, msg string, keysAndValues ...any) {
	if !streamEnded(err) {
		s.LogSink.Error(err, msg, keysAndValues...)
		return
	}
	if s.LogSink.Enabled(2) {
		s.LogSink.Info(2, msg, append(keysAndValues, "err", err)...)
	}
}

// Info is the wrapped sink's, with the same call depth as Error.
func (s streamEndSink) Info(level int, msg string, keysAndValues ...any) {
	s.LogSink.Info(level, msg, keysAndValues...)
}

func (s streamEndSink) WithValues(keysAndValues ...any) logr.LogSink {
	return streamEndSink{s.LogSink.WithValues(keysAndValues...)}
}

func (s streamEndSink) WithName(name string) logr.LogSink {
	return streamEndSink{s.LogSink.WithName(name)}
}

func (s streamEndSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return streamEndSink{cd.WithCallDepth(depth)}
	}
	return s
}
