// Command vnest is the single binary of vnest: the local super cluster
// (`vnest up`), the upstream Kubernetes components it runs as children, and
// an embedded kubectl.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/vnest-dev/vnest/cmd/internal/stopsignal"
)

func main() {
	// Upstream components own their whole command line (hyperkube style).
	if len(os.Args) > 1 {
		if run, ok := components[os.Args[1]]; ok {
			os.Args = os.Args[1:]
			os.Exit(run())
		}
	}
	ctx, stop := stopsignal.Context(context.Background())
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vnest:", err)
		os.Exit(1)
	}
}
