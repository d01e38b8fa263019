package manager

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"

	"github.com/vnest-dev/vnest/internal/child"
)

// stopGrace is how long a control plane gets to stop after SIGTERM.
const stopGrace = 20 * time.Second

// stopProcess stops a control plane. One that had to be killed after the
// grace period is stopped all the same, so that is not an error here.
func stopProcess(p *child.Process) error {
	if err := p.Stop(stopGrace); err != nil && !errors.Is(err, child.ErrKilled) {
		return err
	}
	return nil
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
