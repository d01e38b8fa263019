package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseExpectations(t *testing.T) {
	tests := map[string]struct {
		yaml    string
		want    Expectations
		wantErr string
	}{
		"valid": {
			yaml: "tests:\n- test: a\n  reason: no image\n",
			want: Expectations{Tests: []Expectation{{Test: "a", Reason: "no image"}}},
		},
		"empty":         {yaml: "", want: Expectations{}},
		"no reason":     {yaml: "tests:\n- test: a\n", wantErr: "no reason"},
		"no name":       {yaml: "tests:\n- reason: r\n", wantErr: "no test name"},
		"two lines":     {yaml: "tests:\n- test: a\n  reason: |\n    x\n    y\n", wantErr: "one line"},
		"duplicate":     {yaml: "tests:\n- {test: a, reason: r}\n- {test: a, reason: s}\n", wantErr: "listed twice"},
		"unknown field": {yaml: "tests:\n- {test: a, reason: r, why: s}\n", wantErr: "unknown field"},
		"not a list":    {yaml: "tests: 3\n", wantErr: "parsing"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseExpectations([]byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseExpectations error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseExpectations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	exp := Expectations{Tests: []Expectation{
		{Test: "listed-fails", Reason: "no image"},
		{Test: "listed-passes", Reason: "was broken"},
		{Test: "listed-skips", Reason: "needs two nodes"},
		{Test: "listed-not-run", Reason: "whatever"},
	}}
	tests := map[string]struct {
		results []Result
		want    Summary
		ok      bool
	}{
		"all as expected": {
			results: []Result{
				{Name: "p", State: Passed, Duration: time.Second},
				{Name: "listed-fails", State: Failed, Reason: "ErrImageNeverPull", Duration: 2 * time.Second},
				{Name: "listed-skips", State: Skipped, Reason: "only one node"},
				{Name: "listed-not-run", State: NotRun},
				{Name: "other", State: NotRun},
			},
			want: Summary{
				Passed: 1, Failed: 1, Skipped: 1, NotRun: 2, Duration: 3 * time.Second,
				Expected: []Expected{
					{Result: Result{Name: "listed-fails", State: Failed, Reason: "ErrImageNeverPull", Duration: 2 * time.Second}, Listed: "no image"},
					{Result: Result{Name: "listed-skips", State: Skipped, Reason: "only one node"}, Listed: "needs two nodes"},
				},
				SkippedTests: []Result{{Name: "listed-skips", State: Skipped, Reason: "only one node"}},
			},
			ok: true,
		},
		"unlisted failure fails the run; listed pass is reported": {
			results: []Result{
				{Name: "z-broken", State: Failed, Reason: "timed out"},
				{Name: "a-broken", State: Failed, Reason: "boom"},
				{Name: "listed-passes", State: Passed},
				{Name: "unlisted-skip", State: Skipped, Reason: "no provider"},
			},
			want: Summary{
				Passed: 1, Failed: 2, Skipped: 1,
				Unexpected: []Result{
					{Name: "a-broken", State: Failed, Reason: "boom"},
					{Name: "z-broken", State: Failed, Reason: "timed out"},
				},
				NowPassing:   []string{"listed-passes"},
				SkippedTests: []Result{{Name: "unlisted-skip", State: Skipped, Reason: "no provider"}},
			},
		},
		"nothing ran": {
			results: []Result{{Name: "x", State: NotRun}},
			want:    Summary{NotRun: 1},
			ok:      true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Summarize(tc.results, exp)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
			if got.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v", got.OK(), tc.ok)
			}
		})
	}
}

func TestWriteText(t *testing.T) {
	s := Summarize([]Result{
		{Name: "broken", State: Failed, Reason: "boom"},
		{Name: "listed-passes", State: Passed},
		{Name: "skip", State: Skipped, Reason: "no provider"},
	}, Expectations{Tests: []Expectation{{Test: "listed-passes", Reason: "r"}}})
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"passed 1, failed 1, skipped 1 (not run: 0)",
		"UNEXPECTED FAILURES (1):\n  broken\n      boom",
		"Now passing, remove from the expectations (1):\n  listed-passes",
		"Skipped (1):\n  skip\n      no provider",
		"RESULT: FAILED (1 unexpected failures)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestShippedExpectations keeps conformance/expectations.yaml valid: one reason per test, no
// duplicates, only [Conformance] tests.
func TestShippedExpectations(t *testing.T) {
	exp, err := LoadExpectations("expectations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exp.Tests {
		if !strings.Contains(e.Test, "[Conformance]") {
			t.Errorf("%q is not a [Conformance] test", e.Test)
		}
	}
}
