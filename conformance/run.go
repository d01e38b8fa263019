package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"k8s.io/klog/v2"
)

// Options configure one conformance run. Complete fills the defaults,
// Validate checks them, Run runs.
type Options struct {
	Kubeconfig string // the cluster under test (a tenant, or the super cluster for the baseline)
	Focus      string // regexp on test names, AND-ed with the Conformance label; "" runs all
	Skip       string // regexp on test names to leave out
	Parallel   int    // ginkgo processes; [Serial] tests run alone at the end
	Artifacts  string // JUnit, summary, logs and the repo list go here
	Timeout    time.Duration

	E2EBinary    string // bin/e2e.test (make conformance-build)
	Ginkgo       string // bin/ginkgo
	Expectations string // conformance/expectations.yaml; "" expects every test to pass

	// AllowUnprivileged runs the suite on a vnest tenant that refuses privileged pods
	// (checkPrivileged) instead of failing at the start.
	AllowUnprivileged bool

	// Images: with Containerd (or SuperDataDir, to find it) set, the
	// suite's images are built into ImageDir and imported first.
	Containerd   string
	SuperDataDir string
	ImageDir     string
	Images       ImageSources

	Out io.Writer // progress and the summary; os.Stdout if nil
}

// Complete fills unset fields: binaries next to the running executable
// (bin/), expectations and the kube module source from the working tree.
func (o *Options) Complete() error {
	bin := "bin"
	if self, err := os.Executable(); err == nil {
		bin = filepath.Dir(self)
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.E2EBinary, filepath.Join(bin, "e2e.test"))
	def(&o.Ginkgo, filepath.Join(bin, "ginkgo"))
	def(&o.Images.Agnhost, filepath.Join(bin, "agnhost"))
	def(&o.Images.Nonewprivs, filepath.Join(bin, "nnp"))
	def(&o.Images.SampleAPI, filepath.Join(bin, "sample-apiserver"))
	def(&o.Images.Etcd, filepath.Join(bin, "etcd"))
	def(&o.Images.Busybox, "/bin/busybox")
	def(&o.Artifacts, "_output/conformance")
	def(&o.ImageDir, filepath.Join(o.Artifacts, "images"))
	// Ginkgo runs the suite in the e2e binary's directory, where relative paths (make
	// conformance passes .vnest/demo.kubeconfig and _output/conformance) name nothing.
	for _, p := range []*string{&o.Kubeconfig, &o.Artifacts, &o.ImageDir, &o.E2EBinary, &o.Ginkgo} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if o.Parallel == 0 {
		o.Parallel = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Hour
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Containerd == "" && o.SuperDataDir != "" {
		addr, err := ContainerdAddress(o.SuperDataDir)
		if err != nil {
			return err
		}
		o.Containerd = addr
	}
	if o.Containerd != "" && o.Images.KubeSource == "" {
		dir, err := kubeModuleDir()
		if err != nil {
			return err
		}
		o.Images.KubeSource = dir
	}
	if o.Containerd != "" && o.Images.NginxRoot == "" {
		o.Images.NginxRoot = filepath.Join(o.ImageDir, "nginx-root")
	}
	return nil
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Kubeconfig == "" {
		errs = append(errs, errors.New("--kubeconfig is required"))
	}
	for _, f := range []struct{ flag, path, hint string }{
		{"--kubeconfig", o.Kubeconfig, ""},
		{"--e2e-binary", o.E2EBinary, " (make conformance-build builds it)"},
		{"--ginkgo", o.Ginkgo, " (make conformance-build builds it)"},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w%s", f.flag, err, f.hint))
		}
	}
	if o.Containerd != "" {
		for _, b := range []struct{ name, path string }{
			{"agnhost", o.Images.Agnhost},
			{"nonewprivs", o.Images.Nonewprivs},
			{"sample-apiserver", o.Images.SampleAPI},
			{"etcd", o.Images.Etcd},
		} {
			if _, err := os.Stat(b.path); err != nil {
				errs = append(errs, fmt.Errorf("%s binary: %w (make conformance-build builds it)", b.name, err))
			}
		}
	}
	for flag, re := range map[string]string{"--focus": o.Focus, "--skip": o.Skip} {
		if _, err := regexp.Compile(re); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	if o.Parallel < 1 {
		errs = append(errs, fmt.Errorf("--parallel %d: must be at least 1", o.Parallel))
	}
	return errors.Join(errs...)
}

// Run prepares the images, runs the suite and judges it. The returned
// summary is valid whenever the suite ran; the error is non-nil when it
// could not run or when a test outside the expectations failed.
func (o *Options) Run(ctx context.Context) (Summary, error) {
	log := klog.FromContext(ctx)
	exp := Expectations{}
	if o.Expectations != "" {
		var err error
		if exp, err = LoadExpectations(o.Expectations); err != nil {
			return Summary{}, err
		}
	}
	if err := os.MkdirAll(o.Artifacts, 0o755); err != nil {
		return Summary{}, err
	}
	// The cluster first: a tenant that cannot run the suite fails before the images are built.
	release, err := ensureNode(ctx, o.Kubeconfig, !o.AllowUnprivileged)
	if err != nil {
		return Summary{}, err
	}
	defer release()
	if o.Containerd != "" {
		start := time.Now()
		if err := o.prepareImages(ctx); err != nil {
			return Summary{}, err
		}
		log.Info("Imported the suite's images", "containerd", o.Containerd, "took", time.Since(start).Round(time.Second))
	}

	junit := filepath.Join(o.Artifacts, "junit_01.xml")
	_ = os.Remove(junit) // a report of an earlier run must not pass for this one's
	start := time.Now()
	suiteErr := o.runSuite(ctx)
	log.Info("Suite finished", "took", time.Since(start).Round(time.Second), "err", suiteErr)

	f, err := os.Open(junit)
	if err != nil {
		return Summary{}, fmt.Errorf("the suite wrote no JUnit report (%v): %w", suiteErr, err)
	}
	defer f.Close()
	results, err := ParseJUnit(f)
	if err != nil {
		return Summary{}, err
	}
	s := Summarize(results, exp)
	if err := o.writeSummary(s); err != nil {
		return s, err
	}
	if err := s.WriteText(o.Out); err != nil {
		return s, err
	}
	if s.Passed+s.Failed+s.Skipped == 0 {
		return s, fmt.Errorf("no test ran: --focus %q and --skip %q leave no [Conformance] test", o.Focus, o.Skip)
	}
	if !s.OK() {
		return s, fmt.Errorf("%d tests failed outside the expectations (see %s)", len(s.Unexpected), filepath.Join(o.Artifacts, "summary.txt"))
	}
	return s, nil
}

// runSuite runs the e2e binary under the ginkgo CLI, which runs the
// parallel processes and merges their reports. Its exit status only says
// whether some test failed; the JUnit report says which.
func (o *Options) runSuite(ctx context.Context) error {
	repoList := filepath.Join(o.Artifacts, "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte(RepoList()), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(o.Artifacts, "e2e.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	kubectl, err := writeKubectl(o.Artifacts)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, o.Ginkgo, append(o.ginkgoArgs(), "--kubectl-path="+kubectl)...)
	cmd.Env = append(os.Environ(), "KUBE_TEST_REPO_LIST="+repoList)
	cmd.Stdout = io.MultiWriter(logFile, o.Out)
	cmd.Stderr = cmd.Stdout
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // ginkgo then writes its reports
	// After SIGINT ginkgo finishes the running specs' clean-up and then writes the reports; a kill would lose them.
	cmd.WaitDelay = 10 * time.Minute
	return cmd.Run()
}

// ginkgoArgs are the ginkgo CLI flags, the binary, and after "--" the e2e
// framework's flags.
func (o *Options) ginkgoArgs() []string {
	args := []string{
		"--procs=" + strconv.Itoa(o.Parallel),
		"--label-filter=Conformance",
		"--timeout=" + o.Timeout.String(),
		"--no-color",
		"--silence-skips",
	}
	if o.Focus != "" {
		args = append(args, "--focus="+o.Focus)
	}
	if o.Skip != "" {
		args = append(args, "--skip="+o.Skip)
	}
	return append(args, o.E2EBinary, "--",
		"--kubeconfig="+o.Kubeconfig,
		"--provider=skeleton",
		"--report-dir="+o.Artifacts,
		"--non-blocking-taints=node-role.kubernetes.io/control-plane",
	)
}

// writeKubectl writes a kubectl for the suite that is this binary's
// embedded kubectl (v1.36.3, the suite's version): the suite runs kubectl by
// path, and whatever "kubectl" is on PATH may be years older.
func writeKubectl(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	p, err := filepath.Abs(filepath.Join(dir, "kubectl"))
	if err != nil {
		return "", err
	}
	script := "#!/bin/sh\nexec " + strconv.Quote(self) + " kubectl \"$@\"\n"
	return p, os.WriteFile(p, []byte(script), 0o755)
}

func (o *Options) writeSummary(s Summary) error {
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Artifacts, "summary.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(o.Artifacts, "summary.txt"))
	if err != nil {
		return err
	}
	if err := s.WriteText(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// prepareImages builds the suite's images and imports them into the node.
func (o *Options) prepareImages(ctx context.Context) error {
	if o.Images.NginxRoot != "" {
		if err := unpackDebs(ctx, o.Images.NginxRoot, "nginx", "nginx-common"); err != nil {
			return fmt.Errorf("nginx image: %w", err)
		}
	}
	tarball, err := BuildImages(ctx, o.ImageDir, o.Images)
	if err != nil {
		return err
	}
	return ImportImages(ctx, o.Containerd, tarball)
}

// unpackDebs downloads Debian packages (apt-get download, which installs
// nothing and starts no service) and unpacks them into root, once.
func unpackDebs(ctx context.Context, root string, pkgs ...string) error {
	done := filepath.Join(root, ".unpacked")
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	debs := root + ".debs"
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	dl := exec.CommandContext(ctx, "apt-get", append([]string{"download"}, pkgs...)...)
	dl.Dir = debs
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %v: %w: %s", pkgs, err, out)
	}
	files, err := filepath.Glob(filepath.Join(debs, "*.deb"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", f, root).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %w: %s", f, err, out)
		}
	}
	return os.WriteFile(done, nil, 0o644)
}

// kubeModuleDir is the k8s.io/kubernetes module in the module cache, where
// test/images keeps the data files of agnhost, kitten and nautilus.
func kubeModuleDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes").Output()
	if err != nil {
		return "", fmt.Errorf("locating the k8s.io/kubernetes module (go list -m): %w", err)
	}
	dir := string(out)
	for len(dir) > 0 && (dir[len(dir)-1] == '\n' || dir[len(dir)-1] == '\r') {
		dir = dir[:len(dir)-1]
	}
	return dir, nil
}
