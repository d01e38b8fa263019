// Command pause is the pod sandbox process of vnest's node images: it holds
// the pod's namespaces open, reaps orphaned children (it is PID 1 of the pod
// when the PID namespace is shared) and exits 0 on SIGINT or SIGTERM, like
// upstream kubernetes/build/pause/linux/pause.c.
//
// Build it static and stdlib-only:
//
//	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/pause ./cmd/pause
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "vnest-pause-1"

func main() {
	// First: until Notify, a SIGTERM makes the Go runtime exit 2, not 0 (as PID 1 it cannot die
	// of its own signal).
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println(version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child; SIGCHLD is coalesced, so one signal may
// stand for many zombies.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
