package supercluster

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestOptionsComplete(t *testing.T) {
	// Hold the first port of a block that is otherwise free, so the only
	// complaint can be about that port (a random ephemeral port may sit in
	// a block where other ports are taken too).
	busyPort := freeBlock(t)
	busy, err := net.Listen("tcp", ":"+strconv.Itoa(busyPort))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		change  func(*Options)
		wantErr string
	}{
		"defaults are fine":   {change: func(*Options) {}},
		"unknown nodes mode":  {change: func(o *Options) { o.Nodes = "bogus" }, wantErr: `invalid --nodes "bogus": must be one of auto, real, simulated`},
		"zero nodes":          {change: func(o *Options) { o.NodeCount = 0 }, wantErr: "invalid --node-count 0"},
		"privileged port":     {change: func(o *Options) { o.APIServerPort = 80 }, wantErr: "invalid --apiserver-port 80"},
		"data dir under file": {change: func(o *Options) { o.DataDir = filepath.Join(file, "x") }, wantErr: "--data-dir " + filepath.Join(file, "x") + " is not usable"},
		"busy port":           {change: func(o *Options) { o.APIServerPort = busyPort }, wantErr: "port " + strconv.Itoa(busyPort) + " (kube-apiserver) is already in use"},
		"data dir of a running vnest up, its ports in use": {change: func(o *Options) {
			o.APIServerPort = busyPort
			unlock, err := lockDataDir(o.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(unlock)
		}, wantErr: "is in use by another vnest up (pid " + strconv.Itoa(os.Getpid()) + ")"},
		"real with many nodes": {change: func(o *Options) {
			o.Nodes, o.NodeCount = NodesSimulated, 2
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			o.DataDir = t.TempDir()
			o.Nodes = NodesSimulated
			o.APIServerPort = freeBlock(t)
			tc.change(o)
			_, err := o.Complete()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// freeBlock finds a base port whose whole block is free right now.
func freeBlock(t *testing.T) int {
	t.Helper()
	for base := 20000; base < 60000; base += portCount * 7 {
		if newPorts(base).checkFree(NodesReal) == nil && newPorts(base).checkFree(NodesSimulated) == nil {
			return base
		}
	}
	t.Fatal("no free port block")
	return 0
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/plain`:          "/tmp/plain",
		`/tmp/with\040space`:  "/tmp/with space",
		`/tmp/tab\011and\134`: "/tmp/tab\tand\\",
	} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunDirIsShortAndStable(t *testing.T) {
	long := "/" + strings.Repeat("very-long-directory-name/", 10)
	a, b := runDirFor(long), runDirFor(long)
	if a != b || len(a)+len("/containerd.sock.ttrpc") > 100 {
		t.Fatalf("runDirFor = %q / %q: must be stable and short enough for unix sockets", a, b)
	}
	if runDirFor("/a") == runDirFor("/b") {
		t.Fatal("different data dirs share a run dir")
	}
}
