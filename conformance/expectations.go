package conformance

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Expectations are the tests expected not to pass on a tenant, each with
// the one-line reason why (conformance/expectations.yaml).
type Expectations struct {
	// Tests maps a test's full name (as in the JUnit report, without
	// "[It] ") to the reason it is expected to fail or skip.
	Tests []Expectation `json:"tests"`
}

// Expectation is one test expected not to pass.
type Expectation struct {
	Test   string `json:"test"`
	Reason string `json:"reason"`
}

// LoadExpectations reads an expectations file.
func LoadExpectations(path string) (Expectations, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Expectations{}, fmt.Errorf("reading expectations: %w", err)
	}
	return ParseExpectations(data)
}

// ParseExpectations parses and validates an expectations document: every
// entry needs a test name and a reason, and no test may be listed twice.
func ParseExpectations(data []byte) (Expectations, error) {
	var e Expectations
	if err := yaml.UnmarshalStrict(data, &e); err != nil {
		return Expectations{}, fmt.Errorf("parsing expectations: %w", err)
	}
	seen := map[string]bool{}
	var errs []error
	for i, x := range e.Tests {
		switch {
		case strings.TrimSpace(x.Test) == "":
			errs = append(errs, fmt.Errorf("tests[%d]: no test name", i))
		case strings.TrimSpace(x.Reason) == "":
			errs = append(errs, fmt.Errorf("tests[%d] %q: no reason", i, x.Test))
		case strings.Contains(x.Reason, "\n"):
			errs = append(errs, fmt.Errorf("tests[%d] %q: the reason must be one line", i, x.Test))
		case seen[x.Test]:
			errs = append(errs, fmt.Errorf("tests[%d] %q: listed twice", i, x.Test))
		}
		seen[x.Test] = true
	}
	if err := errors.Join(errs...); err != nil {
		return Expectations{}, fmt.Errorf("invalid expectations: %w", err)
	}
	return e, nil
}

// reasons returns test name -> reason.
func (e Expectations) reasons() map[string]string {
	m := make(map[string]string, len(e.Tests))
	for _, x := range e.Tests {
		m[x.Test] = x.Reason
	}
	return m
}
