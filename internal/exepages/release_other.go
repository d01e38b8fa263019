//go:build !linux

package exepages

// Release does nothing outside Linux.
func Release() (int64, error) { return 0, nil }

// Evict does nothing outside Linux.
func Evict(string) error { return nil }
