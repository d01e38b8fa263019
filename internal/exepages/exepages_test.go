package exepages

import (
	"reflect"
	"strings"
	"testing"
)

// mapping writes one smaps entry.
func mapping(header string, rssKB, anonKB int) string {
	return header + "\n" +
		"Size:              64 kB\n" +
		"Rss:               " + itoa(rssKB) + " kB\n" +
		"Pss:               " + itoa(rssKB) + " kB\n" +
		"Anonymous:         " + itoa(anonKB) + " kB\n" +
		"VmFlags: rd ex mr mw me\n"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestRegions(t *testing.T) {
	const exe = "/opt/vnest/bin/vnest"
	tests := []struct {
		name  string
		smaps string
		exe   string
		want  []Region
	}{{
		name: "text and read-only data of the executable",
		smaps: mapping("00400000-02648000 r--p 00000000 fe:00 1234 /opt/vnest/bin/vnest", 3072, 0) +
			mapping("02648000-06c7f000 r-xp 02248000 fe:00 1234 /opt/vnest/bin/vnest", 57344, 0),
		want: []Region{{0x400000, 0x2648000, 3072 << 10, false}, {0x2648000, 0x6c7f000, 57344 << 10, false}},
	}, {
		name:  "a mapping Release has marked",
		smaps: strings.Replace(mapping("02648000-06c7f000 r-xp 02248000 fe:00 1234 /opt/vnest/bin/vnest", 512, 0), "me\n", "me nh\n", 1),
		want:  []Region{{0x2648000, 0x6c7f000, 512 << 10, true}},
	}, {
		name: "writable data is left alone",
		smaps: mapping("0bdad000-0bf14000 rw-p 0b9ad000 fe:00 1234 /opt/vnest/bin/vnest", 1024, 200) +
			mapping("0bf14000-0bf40000 rw-p 00000000 00:00 0", 100, 100),
	}, {
		name:  "a read-only mapping holding copied-on-write pages is left alone",
		smaps: mapping("0bdac000-0bdad000 r--p 0b9ac000 fe:00 1234 /opt/vnest/bin/vnest", 4, 4),
	}, {
		name: "other files, shared mappings, the heap and stacks are left alone",
		smaps: mapping("7f0000000000-7f0000100000 r-xp 00000000 fe:00 99 /usr/lib/libc.so.6", 400, 0) +
			mapping("7f0000200000-7f0000300000 r--s 00000000 fe:00 1234 /opt/vnest/bin/vnest", 400, 0) +
			mapping("c000000000-c004000000 rw-p 00000000 00:00 0", 9000, 9000) +
			mapping("7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]", 12, 12),
	}, {
		name:  "a path with spaces",
		smaps: mapping("00400000-00500000 r-xp 00000000 fe:00 1234   /tmp/my dir/vnest", 8, 0),
		exe:   "/tmp/my dir/vnest",
		want:  []Region{{0x400000, 0x500000, 8 << 10, false}},
	}, {
		name:  "an executable replaced on disk while it runs",
		smaps: mapping("00400000-00500000 r-xp 00000000 fe:00 1234 /opt/vnest/bin/vnest (deleted)", 8, 0),
		exe:   "/opt/vnest/bin/vnest (deleted)",
		want:  []Region{{0x400000, 0x500000, 8 << 10, false}},
	}, {
		name:  "the same path, replaced: the old mapping is not the running file",
		smaps: mapping("00400000-00500000 r-xp 00000000 fe:00 1234 /opt/vnest/bin/vnest (deleted)", 8, 0),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exeName := exe
			if tt.exe != "" {
				exeName = tt.exe
			}
			got, err := Regions(strings.NewReader(tt.smaps), exeName)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Regions() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRegionsBadSize(t *testing.T) {
	smaps := "00400000-00500000 r-xp 00000000 fe:00 1234 /x\nRss: lots kB\n"
	if _, err := Regions(strings.NewReader(smaps), "/x"); err == nil || !strings.Contains(err.Error(), `"lots kB"`) {
		t.Errorf("Regions() error = %v, want one naming the bad size", err)
	}
}
