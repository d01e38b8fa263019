// Package child supervises child processes of vnest: `vnest up` runs the
// Kubernetes components this way and the manager's local provisioner runs
// tenant control planes. A child logs to a file of its own, has its own
// process group (a terminal's Ctrl-C reaches only the parent, which then
// stops children in order) and dies with its parent (Pdeathsig).
//
// The package only starts, watches and stops processes; what to restart and
// when is the caller's business.
package child
