package conformance

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Summary is the verdict on one run.
type Summary struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	NotRun  int `json:"notRun"` // left out by focus/skip; not judged
	// Duration is the sum of the test durations (parallel runs take less).
	Duration time.Duration `json:"duration"`

	// Unexpected are failed tests not on the expectations list: they fail the run.
	Unexpected []Result `json:"unexpected"`
	// Expected are failed or skipped tests on the list, with the listed reason.
	Expected []Expected `json:"expected"`
	// NowPassing are tests on the list that passed: take them off the list.
	NowPassing []string `json:"nowPassing"`
	// SkippedTests are all skipped tests with the reason the test gave.
	SkippedTests []Result `json:"skippedTests"`
}

// Expected is a test that did not pass, as expected.
type Expected struct {
	Result
	Listed string `json:"listed"` // the reason on the expectations list
}

// OK reports whether the run is a success: no test outside the list failed.
func (s Summary) OK() bool { return len(s.Unexpected) == 0 }

// Summarize judges results against the expectations. Only tests that ran
// are judged; a listed test that was not run is neither expected nor now
// passing.
func Summarize(results []Result, exp Expectations) Summary {
	listed := exp.reasons()
	var s Summary
	for _, r := range results {
		s.Duration += r.Duration
		reason, onList := listed[r.Name]
		switch r.State {
		case NotRun:
			s.NotRun++
			continue
		case Passed:
			s.Passed++
			if onList {
				s.NowPassing = append(s.NowPassing, r.Name)
			}
			continue
		case Skipped:
			s.Skipped++
			s.SkippedTests = append(s.SkippedTests, r)
		case Failed:
			s.Failed++
			if !onList {
				s.Unexpected = append(s.Unexpected, r)
				continue
			}
		}
		if onList {
			s.Expected = append(s.Expected, Expected{Result: r, Listed: reason})
		}
	}
	sort.Slice(s.Unexpected, func(i, j int) bool { return s.Unexpected[i].Name < s.Unexpected[j].Name })
	sort.Slice(s.Expected, func(i, j int) bool { return s.Expected[i].Name < s.Expected[j].Name })
	sort.Slice(s.SkippedTests, func(i, j int) bool { return s.SkippedTests[i].Name < s.SkippedTests[j].Name })
	sort.Strings(s.NowPassing)
	return s
}

// WriteText writes the summary for people: counts, then every unexpected
// failure, expected non-pass, newly passing test and skip with its reason.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "passed %d, failed %d, skipped %d (not run: %d)\n", s.Passed, s.Failed, s.Skipped, s.NotRun)
	section := func(title string, n int, line func(i int) string) {
		if n == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s (%d):\n", title, n)
		for i := range n {
			fmt.Fprintf(&b, "  %s\n", line(i))
		}
	}
	section("UNEXPECTED FAILURES", len(s.Unexpected), func(i int) string {
		return s.Unexpected[i].Name + "\n      " + s.Unexpected[i].Reason
	})
	section("Now passing, remove from the expectations", len(s.NowPassing), func(i int) string { return s.NowPassing[i] })
	section("Expected not to pass", len(s.Expected), func(i int) string {
		e := s.Expected[i]
		return fmt.Sprintf("%s [%s]\n      listed: %s\n      got: %s", e.Name, e.State, e.Listed, e.Reason)
	})
	section("Skipped", len(s.SkippedTests), func(i int) string {
		return s.SkippedTests[i].Name + "\n      " + s.SkippedTests[i].Reason
	})
	if s.OK() {
		b.WriteString("\nRESULT: OK (no failure outside the expectations)\n")
	} else {
		fmt.Fprintf(&b, "\nRESULT: FAILED (%d unexpected failures)\n", len(s.Unexpected))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
