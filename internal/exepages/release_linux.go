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
		// No huge page first: a later touch then maps page table entries, never
		// a whole cached 2 MiB folio at once through one PMD entry. A kernel
		// without THP refuses it (EINVAL); that is fine.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.Start, r.End-r.Start, unix.MADV_NOHUGEPAGE)
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.Start, r.End-r.Start, unix.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("madvise %#x-%#x: %w", r.Start, r.End, errno)
		}
		released += r.Rss
	}
	return released, nil
}

// Evict drops the file's pages from the page cache where no process maps
// them (posix_fadvise DONTNEED), so that the next process started from it
// reads it from disk, as after a reboot. For benchmarks: the page cache that
// `go build` leaves (large folios, mapped whole) makes a process started from
// a binary it just wrote map more of it than one started from a binary read
// from disk. The file is written back first: the kernel drops only clean
// pages, and a binary just built is still dirty.
func Evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("writing %s back before dropping it from the page cache: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("dropping %s from the page cache: %w", path, err)
	}
	return nil
}
