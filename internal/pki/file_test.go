package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tree describes what is under dir, by path relative to it: "dir", "-> TARGET" for a symlink, or
// "MODE CONTENT" for a file.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case d.IsDir():
			got[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			got[rel] = "-> " + target
		default:
			fi, err := d.Info()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			got[rel] = fmt.Sprintf("%v %s", fi.Mode().Perm(), data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestWriteFile: WriteFile gives the file its data and mode whether it was there or not, writes
// through symlinks, which stay as they were, and leaves no temporary file.
func TestWriteFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare map[string]string // in tree's form; directories are made as files need them
		want    map[string]string
	}{
		{name: "a new file",
			want: map[string]string{"f": "-rw------- new"}},
		{name: "over a file readable by all",
			prepare: map[string]string{"f": "-rw-r--r-- old"},
			want:    map[string]string{"f": "-rw------- new"}},
		{name: "through a symlink",
			prepare: map[string]string{"f": "-> real", "real": "-rw-r--r-- old"},
			want:    map[string]string{"f": "-> real", "real": "-rw------- new"}},
		{name: "through a dangling symlink",
			prepare: map[string]string{"f": "-> real"},
			want:    map[string]string{"f": "-> real", "real": "-rw------- new"}},
		{name: "through a link to a link in a linked directory", // ../real is a/real, not real
			prepare: map[string]string{"f": "-> in/g", "in": "-> a/b", "a/b/g": "-> ../real", "a/real": "-rw------- old"},
			want:    map[string]string{"f": "-> in/g", "in": "-> a/b", "a": "dir", "a/b": "dir", "a/b/g": "-> ../real", "a/real": "-rw------- new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, what := range tc.prepare {
				file := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
					t.Fatal(err)
				}
				var err error
				if target, ok := strings.CutPrefix(what, "-> "); ok {
					err = os.Symlink(target, file)
				} else if content, ok := strings.CutPrefix(what, "-rw-r--r-- "); ok {
					err = os.WriteFile(file, []byte(content), 0o644)
				} else {
					err = os.WriteFile(file, []byte(strings.TrimPrefix(what, "-rw------- ")), 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(filepath.Join(dir, "f"), []byte("new"), 0o600); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, tree(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriteFileFails: a WriteFile that fails before its rename leaves the old content and no
// temporary file.
func TestWriteFileFails(t *testing.T) {
	errSync := errors.New("input/output error")
	for _, tc := range []struct {
		name    string
		fail    func(synced string) error
		chown   func(*os.File, int, int) error
		euid    int
		wantErr error
	}{
		{name: "syncing the data fails", fail: func(synced string) error {
			if synced != "dir" {
				return errSync
			}
			return nil
		}, wantErr: errSync},
		{name: "root cannot give the file its owner", chown: func(*os.File, int, int) error { return syscall.EPERM }, wantErr: syscall.EPERM},
		{name: "another error giving the file its owner", chown: func(*os.File, int, int) error { return syscall.EIO }, euid: 1000, wantErr: syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "f")
			if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			traceSyncs(t, tc.fail)
			if tc.chown != nil {
				chown, geteuid = tc.chown, func() int { return tc.euid }
				t.Cleanup(func() { chown, geteuid = (*os.File).Chown, os.Geteuid })
			}
			err := WriteFile(file, []byte("new"), 0o600)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), "writing "+file+": ") {
				t.Errorf("WriteFile = %v, want an error writing %s (%v)", err, file, tc.wantErr)
			}
			if diff := cmp.Diff(map[string]string{"f": "-rw-r--r-- old"}, tree(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriteFileOwner: a file that exists keeps its owner and group; one that only root could
// give away is written by anyone else as their own.
func TestWriteFileOwner(t *testing.T) {
	owner := func(t *testing.T, file string) string {
		t.Helper()
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	t.Run("root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root gives files away")
		}
		file := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(file, 4242, 4343); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(file, []byte("new"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := owner(t, file); got != "4242:4343" {
			t.Errorf("owner %s, want 4242:4343", got)
		}
	})
	t.Run("refused, not root", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		mine := owner(t, file)
		chown, geteuid = func(*os.File, int, int) error { return syscall.EPERM }, func() int { return 1000 }
		t.Cleanup(func() { chown, geteuid = (*os.File).Chown, os.Geteuid })
		if err := WriteFile(file, []byte("new"), 0o600); err != nil {
			t.Fatal(err)
		}
		if data, err := os.ReadFile(file); err != nil || string(data) != "new" || owner(t, file) != mine {
			t.Errorf("%s holds %q (%v), owner %s; want %q, owner %s", file, data, err, owner(t, file), "new", mine)
		}
	})
}

// TestWriteFileNotRegular: a target that is a named pipe, or a link to one (as /dev/stdout is to
// the process's output), is written to as it is; there is nothing to replace, and the pipe stays.
func TestWriteFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pipe, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	// Opened for reading without waiting for a writer, so that a write to the pipe finds a
	// reader, and nothing blocks when the pipe is replaced instead.
	r, err := os.OpenFile(pipe, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := WriteFile(filepath.Join(dir, "out"), []byte("kubeconfig"), 0o600); err != nil {
		t.Fatalf("WriteFile through a link to a pipe: %v", err)
	}
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	if got := string(buf[:n]); got != "kubeconfig" {
		t.Errorf("read from the pipe %q, want %q", got, "kubeconfig")
	}
	if fi, err := os.Lstat(pipe); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the pipe is no longer one: %v, %v", fi, err)
	}
}
