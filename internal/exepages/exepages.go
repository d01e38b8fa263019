package exepages

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Region is one mapping of the executable that Release unmaps.
type Region struct {
	Start, End uintptr
	// Rss is how much of it is resident, in bytes, as smaps said.
	Rss int64
	// NoHugePage: the mapping is marked MADV_NOHUGEPAGE (VmFlags "nh"), as
	// Release leaves it.
	NoHugePage bool
}

// Regions picks, from the text of /proc/PID/smaps, the mappings of the file
// exe that are private and read-only and hold no anonymous (copied-on-write)
// page: those whose pages the kernel can drop and map again from the file.
func Regions(smaps io.Reader, exe string) ([]Region, error) {
	var (
		out []Region
		cur *Region // the mapping being read, when it is a candidate
		ok  bool    // cur has no anonymous page so far
	)
	flush := func() {
		if cur != nil && ok {
			out = append(out, *cur)
		}
		cur = nil
	}
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		if r, perms, path, isHeader := parseHeader(line); isHeader {
			flush()
			if path == exe && perms[0] == 'r' && perms[1] != 'w' && perms[3] == 'p' {
				cur, ok = &r, true
			}
			continue
		}
		if cur == nil {
			continue
		}
		key, value, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		switch key {
		case "Rss":
			kb, err := kilobytes(value)
			if err != nil {
				return nil, err
			}
			cur.Rss = kb << 10
		case "VmFlags":
			cur.NoHugePage = slices.Contains(strings.Fields(value), "nh")
		case "Anonymous":
			kb, err := kilobytes(value)
			if err != nil {
				return nil, err
			}
			if kb != 0 {
				ok = false
			}
		}
	}
	flush()
	return out, sc.Err()
}

// parseHeader reads a mapping's first line in smaps:
// "start-end perms offset dev inode [path]". The path may hold spaces.
func parseHeader(line string) (r Region, perms, path string, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 5 || len(fields[1]) != 4 {
		return Region{}, "", "", false
	}
	lo, hi, found := strings.Cut(fields[0], "-")
	if !found {
		return Region{}, "", "", false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return Region{}, "", "", false
	}
	if len(fields) > 5 {
		// The path is the rest of the line after the fifth field (it may hold spaces).
		rest := line
		for range 5 {
			rest = strings.TrimLeft(rest, " ")
			rest = rest[strings.IndexByte(rest, ' ')+1:]
		}
		path = strings.TrimLeft(rest, " ")
	}
	return Region{Start: uintptr(start), End: uintptr(end)}, fields[1], path, true
}

// kilobytes reads smaps's "   1234 kB".
func kilobytes(value string) (int64, error) {
	value = strings.TrimSpace(value)
	n, err := strconv.ParseInt(strings.TrimSuffix(value, " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading smaps: %q is not a size in kB", value)
	}
	return n, nil
}
