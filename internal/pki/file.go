package pki

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile replaces the file name with data, mode perm, atomically and durably: a reader, a
// crash or a power loss finds the old content or the new, never part of either, and a write
// that fails leaves the old content. For files that hold credentials and are someone else's to
// place (a kubeconfig a user asked for), so it keeps what they set up: a symlink is followed and
// its target replaced, so the link stays a link (a dangling one too, as open(2) would follow
// it), and a file that exists keeps its owner where the owner can be given (as root; anyone else
// writes files of their own). The data is written to a temporary file beside the target, which
// a crash before the rename leaves there (mode perm, named .NAME.tmp…). A target that exists and
// is not a regular file (a device such as /dev/stdout, a named pipe) is written to as it is.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	if fi, err := os.Stat(name); err == nil && !fi.Mode().IsRegular() {
		// A device or a pipe (-o /dev/stdout): nothing to replace, and no file to write beside
		// it in /dev or /proc; written to as it is, through the kernel's links (/proc/self/fd/1
		// reads "pipe:[…]", no path).
		return writeInPlace(name, data)
	}
	file, err := resolveLinks(name)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	err = keepOwner(f, file)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := fill(f, data); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := renameSynced(f.Name(), file); err != nil {
		_ = os.Remove(f.Name()) // gone already unless the rename failed
		return err
	}
	return nil
}

// writeInPlace writes data to file, which exists and is not a regular file.
func writeInPlace(file string, data []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

// maxLinks is how many symlinks resolveLinks follows, as many as Linux follows in one lookup.
const maxLinks = 40

// resolveLinks follows name while it is a symlink, to the file a write through it reaches; that
// file need not exist. filepath.EvalSymlinks would refuse a dangling link.
func resolveLinks(name string) (string, error) {
	for range maxLinks {
		fi, err := os.Lstat(name)
		if errors.Is(err, os.ErrNotExist) || err == nil && fi.Mode()&os.ModeSymlink == 0 {
			return name, nil
		}
		if err != nil {
			return "", err
		}
		target, err := os.Readlink(name)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			// Relative to the link's real directory: "../x" in a linked directory is not what
			// a lexical join makes of it.
			dir, err := filepath.EvalSymlinks(filepath.Dir(name))
			if err != nil {
				return "", err
			}
			target = filepath.Join(dir, target)
		}
		name = target
	}
	return "", &os.PathError{Op: "open", Path: name, Err: syscall.ELOOP}
}

// chown and geteuid are os's; tests replace them to see a chown refused.
var (
	chown   = (*os.File).Chown
	geteuid = os.Geteuid
)

// keepOwner gives f, the new content of file, file's owner and group, if file exists. Only root
// may give a file away; anyone else, refused (EPERM), writes a file of their own, as a write in
// place would not, but the only other choice is not to write at all.
func keepOwner(f *os.File, file string) error {
	fi, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	err = chown(f, int(st.Uid), int(st.Gid))
	if errors.Is(err, syscall.EPERM) && geteuid() != 0 {
		return nil
	}
	return err
}

// writeFile writes data to file atomically and durably, so that neither a crash nor a power loss
// leaves half a certificate or key under its name.
func writeFile(file string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := writeAside(file, data, mode)
	if err != nil {
		return err
	}
	if err := renameSynced(tmp, file); err != nil {
		_ = os.Remove(tmp) // gone already unless the rename failed
		return err
	}
	return nil
}

// fsync makes what was written to f lasting: a file's data, or a directory's entries. Tests
// replace it to see when it is called and to make it fail.
var fsync = (*os.File).Sync

// writeAside writes data to file.tmp (created with mode, and file's directory if missing) and
// syncs it, so that once renamed to file after a power loss it is never empty or partial. It
// returns the name written; a file.tmp it could not write whole is removed. The name is fixed
// so that CompletePair finds it.
func writeAside(file string, data []byte, mode os.FileMode) (string, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", fmt.Errorf("writing %s: %w", file, err)
	}
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", file, err)
	}
	if err := fill(f, data); err != nil {
		return "", fmt.Errorf("writing %s: %w", file, err)
	}
	return tmp, nil
}

// fill writes data to f, a file written aside, syncs and closes it; a file it could not write
// whole is removed.
func fill(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// renameSynced renames tmp, written aside, to file and syncs their directory, so that file holds
// the new data after a power loss too.
func renameSynced(tmp, file string) error {
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	dir, err := os.Open(filepath.Dir(file))
	if err == nil {
		err = fsync(dir)
		if cerr := dir.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}
