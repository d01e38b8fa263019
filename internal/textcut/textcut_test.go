package textcut

import "testing"

func TestTruncate(t *testing.T) {
	cases := map[string]struct {
		s    string
		n    int
		want string
	}{
		"short":               {"abc", 5, "abc"},
		"exactly n":           {"abcde", 5, "abcde"},
		"cut":                 {"abcdefgh", 6, "abc…"},
		"cut on a rune start": {"aé€bcdefgh", 8, "aé…"}, // 5 bytes would end within €
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Truncate(tc.s, tc.n)
			if got != tc.want || len(got) > tc.n {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
			}
		})
	}
}
