package layout

import (
	"os"
	"path/filepath"
)

// ControlPlaneBinaryName is the binary with only the `apiserver` command
// (cmd/vnest-apiserver): a tenant control plane run from it keeps less memory
// than one run from the vnest binary, which links every component.
const ControlPlaneBinaryName = "vnest-apiserver"

// ControlPlaneImageCommand is where the vnest image holds ControlPlaneBinaryName: the command of
// the cluster provisioner's control-plane pods.
const ControlPlaneImageCommand = "/usr/local/bin/" + ControlPlaneBinaryName

// ControlPlaneBinary is the executable to run as `<binary> apiserver ...` for
// the vnest binary at vnest: ControlPlaneBinaryName in the same directory when
// it is an executable file at least as new as vnest (both come from one `make
// build`; an older one is left from an earlier build and may not match), else
// vnest itself.
func ControlPlaneBinary(vnest string) string {
	self, err := os.Stat(vnest)
	if err != nil {
		return vnest
	}
	candidate := filepath.Join(filepath.Dir(vnest), ControlPlaneBinaryName)
	st, err := os.Stat(candidate)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 || st.ModTime().Before(self.ModTime()) {
		return vnest
	}
	return candidate
}
