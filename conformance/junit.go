package conformance

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// State is the outcome of one test.
type State string

const (
	Passed  State = "passed"
	Failed  State = "failed"
	Skipped State = "skipped" // the test ran and skipped itself, with a reason
	// NotRun is a spec the focus/skip filters left out. Ginkgo lists every
	// spec of the suite in its report, so most specs of a conformance run
	// are NotRun; they are counted apart and never judged.
	NotRun State = "not-run"
)

// Result is one test of a run.
type Result struct {
	Name     string
	State    State
	Reason   string // why it failed or skipped: the first line of the message
	Duration time.Duration
}

// junitSuites is what ginkgo's JUnit reporter writes (one <testsuite> per suite).
type junitSuites struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Time    float64       `xml:"time,attr"`
	Skipped *junitMessage `xml:"skipped"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// ParseJUnit reads a ginkgo JUnit report and returns its test cases. Only
// "[It]" specs are tests: suite set-up and tear-down nodes are reported as
// failed tests only when they fail, since then no test of the run is
// trustworthy.
func ParseJUnit(r io.Reader) ([]Result, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var doc junitSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing JUnit: %w", err)
	}
	var out []Result
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			res := caseResult(c)
			if !isSpec(c.Name) && res.State != Failed {
				continue
			}
			out = append(out, res)
		}
	}
	return out, nil
}

// isSpec tells an It spec from a suite node ("[SynchronizedBeforeSuite]",
// "[ReportAfterSuite] …"). The e2e framework's own report leaves out the
// "[It]" prefix, ginkgo's --junit-report keeps it.
func isSpec(name string) bool {
	if strings.HasPrefix(name, "[It] ") {
		return true
	}
	for _, node := range []string{"[BeforeSuite]", "[AfterSuite]", "[SynchronizedBeforeSuite]",
		"[SynchronizedAfterSuite]", "[ReportBeforeSuite]", "[ReportAfterSuite]", "[DeferCleanup (Suite)]"} {
		if strings.HasPrefix(name, node) {
			return false
		}
	}
	return true
}

func caseResult(c junitCase) Result {
	res := Result{
		Name:     strings.TrimPrefix(c.Name, "[It] "),
		Duration: time.Duration(c.Time * float64(time.Second)),
	}
	switch {
	case c.Failure != nil:
		res.State, res.Reason = Failed, failureReason(c.Failure)
	case c.Error != nil:
		res.State, res.Reason = Failed, failureReason(c.Error)
	case c.Skipped != nil:
		// "skipped" alone: filtered out; "skipped - REASON": the test called Skip.
		reason, ok := strings.CutPrefix(c.Skipped.Message, "skipped - ")
		if !ok {
			res.State = NotRun
			if c.Skipped.Message == "pending" {
				res.Reason = "pending"
			}
			break
		}
		res.State, res.Reason = Skipped, firstLine(reason)
	default:
		res.State = Passed
	}
	return res
}

// failureReason is the one line that says why a test failed: the message
// attribute when there is one, else the first line of the description that
// is not ginkgo's "[FAILED]" marker.
func failureReason(m *junitMessage) string {
	if s := firstLine(m.Message); s != "" {
		return s
	}
	for _, line := range strings.Split(m.Text, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "[FAILED]"))
		if line != "" && !strings.HasPrefix(line, "In [") {
			return truncate(line)
		}
	}
	if m.Type != "" {
		return m.Type
	}
	return "failed"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return truncate(s)
}

// maxReason keeps one-line reasons one line on a terminal-ish width.
const maxReason = 240

func truncate(s string) string {
	if len(s) <= maxReason {
		return s
	}
	return s[:maxReason-3] + "..."
}
