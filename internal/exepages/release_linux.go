package exepages

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Release unmaps the executable's read-only pages (see the package doc) and
// says how many bytes were resident in them.
func Release() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	regions, err := Regions(f, exe)
	f.Close()
	if err != nil {
		return 0, err
	}
	var released int64
	for _, r := range regions {
		// No huge page first: a later touch then maps a small page, not a whole
		// cached 2 MiB folio. A kernel without THP refuses it (EINVAL); that is fine.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.Start, r.End-r.Start, unix.MADV_NOHUGEPAGE)
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.Start, r.End-r.Start, unix.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("madvise %#x-%#x: %w", r.Start, r.End, errno)
		}
		released += r.Rss
	}
	return released, nil
}
