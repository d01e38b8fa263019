package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseJUnit(t *testing.T) {
	tests := map[string]struct {
		xml     string
		want    []Result
		wantErr bool
	}{
		"e2e framework report": {
			// As test/e2e/framework/internal/junit writes it: no failure message attribute.
			xml: `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" disabled="2" errors="0" failures="1" time="12.5">
  <testsuite name="Kubernetes e2e suite" package="/x" tests="5" disabled="0" skipped="2" errors="0" failures="1" time="12.5">
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="1.5"></testcase>
    <testcase name="[It] [sig-apps] Deployment should run [Conformance]" classname="Kubernetes e2e suite" status="passed" time="3.25"></testcase>
    <testcase name="[It] [sig-network] DNS should resolve [Conformance]" classname="Kubernetes e2e suite" status="failed" time="7">
      <failure message="" type="failed">[FAILED] Unable to read agnhost_udp@kubernetes.default
In [It] at: dns_common.go:476 @ 12/01/26 23:00:00.000
</failure>
    </testcase>
    <testcase name="[It] [sig-node] Pods should be skipped [Conformance]" classname="Kubernetes e2e suite" status="skipped" time="0.5">
      <skipped message="skipped - Only supported for providers [gce gke] (not skeleton)&#xA;more detail"></skipped>
    </testcase>
    <testcase name="[It] [sig-storage] CSI something" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
  </testsuite>
</testsuites>`,
			want: []Result{
				{Name: "[sig-apps] Deployment should run [Conformance]", State: Passed, Duration: 3250 * time.Millisecond},
				{Name: "[sig-network] DNS should resolve [Conformance]", State: Failed, Reason: "Unable to read agnhost_udp@kubernetes.default", Duration: 7 * time.Second},
				{Name: "[sig-node] Pods should be skipped [Conformance]", State: Skipped, Reason: "Only supported for providers [gce gke] (not skeleton)", Duration: 500 * time.Millisecond},
				{Name: "[sig-storage] CSI something", State: NotRun},
			},
		},
		"failure message attribute, timeout and panic": {
			xml: `<testsuites><testsuite>
    <testcase name="[It] a" status="failed"><failure message="expected 1&#xA;to equal 2" type="failed">long</failure></testcase>
    <testcase name="[It] b" status="timedout"><failure message="" type="timedout">
In [It] at: x.go:1</failure></testcase>
    <testcase name="[It] c" status="panicked"><error message="runtime error: nil map" type="panicked">stack</error></testcase>
    <testcase name="[It] d" status="pending"><skipped message="pending"></skipped></testcase>
</testsuite></testsuites>`,
			want: []Result{
				{Name: "a", State: Failed, Reason: "expected 1"},
				{Name: "b", State: Failed, Reason: "timedout"},
				{Name: "c", State: Failed, Reason: "runtime error: nil map"},
				{Name: "d", State: NotRun, Reason: "pending"},
			},
		},
		"failed suite set-up is a failed test": {
			xml: `<testsuites><testsuite>
    <testcase name="[SynchronizedBeforeSuite]" status="failed"><failure type="failed">[FAILED] no nodes are Ready</failure></testcase>
    <testcase name="[ReportAfterSuite] Kubernetes e2e JUnit report" status="passed"></testcase>
</testsuite></testsuites>`,
			want: []Result{{Name: "[SynchronizedBeforeSuite]", State: Failed, Reason: "no nodes are Ready"}},
		},
		"not XML": {xml: "junk <", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseJUnit(strings.NewReader(tc.xml))
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseJUnit error = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseJUnit (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("x", maxReason+10)
	if got := firstLine(long); len(got) != maxReason || !strings.HasSuffix(got, "...") {
		t.Errorf("firstLine of a long line = %d chars %q…, want %d ending in ...", len(got), got[:10], maxReason)
	}
}
