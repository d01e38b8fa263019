package exepages

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	// Linked for its size: its init touches megabytes of the test binary's
	// text and read-only data, as a control plane's start-up does.
	_ "k8s.io/client-go/kubernetes/scheme"
)

// rssFile is the process's resident file pages, in bytes: for a static Go
// binary, the pages of its executable. Reading it touches little code.
func rssFile(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(data), "RssFile:")
	kb, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
	n, err := strconv.ParseInt(kb, 10, 64)
	if err != nil {
		t.Fatalf("no RssFile in /proc/self/status: %v", err)
	}
	return n << 10
}

// The test binary itself: the pages of it that start-up touched are unmapped
// by Release, and the process runs on.
func TestReleaseUnmapsTheExecutable(t *testing.T) {
	before := rssFile(t)
	released, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	t.Logf("RssFile %d KiB before, %d KiB after (Release said %d KiB)", before>>10, after>>10, released>>10)
	if before < 8<<20 {
		t.Fatalf("only %d KiB of the test binary resident before Release; the test needs more", before>>10)
	}
	if released < before/2 {
		t.Errorf("Release reported %d KiB released of %d KiB resident", released>>10, before>>10)
	}
	if after > before/2 {
		t.Errorf("RssFile after Release %d KiB, before %d KiB: want under half", after>>10, before>>10)
	}

	// What is touched again is mapped in small pages.
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer smaps.Close()
	regions, err := Regions(smaps, exe)
	if err != nil || len(regions) == 0 {
		t.Fatalf("Regions = %v, %v; want the executable's read-only mappings", regions, err)
	}
	for _, r := range regions {
		if !r.NoHugePage {
			t.Errorf("mapping %#x-%#x is not marked no-huge-page (VmFlags nh) after Release", r.Start, r.End)
		}
	}
}

// TestEvict: a file just written is in the page cache (dirty); after Evict it is not
// (mincore of a fresh mapping of it).
func TestEvict(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := cachedPages(t, path); got == 0 {
		t.Fatal("a file just written has no page in the page cache; cannot test")
	}
	// The pages are still dirty here: Evict has to write them back to drop them.
	if err := Evict(path); err != nil {
		t.Fatal(err)
	}
	if got := cachedPages(t, path); got != 0 {
		t.Errorf("%d pages of the file still in the page cache after Evict", got)
	}
}

// cachedPages counts the file's pages in the page cache.
func cachedPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(data)
	vec := make([]byte, (len(data)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
