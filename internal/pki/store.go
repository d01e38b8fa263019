package pki

import (
	"crypto"
	"io/fs"
	"os"
)

// store is where the files of a PKI are kept: a directory (disk) or memory (Files). The logic
// that loads, checks and issues is the same for both.
type store interface {
	// read returns the content of file; an error that is fs.ErrNotExist when it is absent.
	read(file string) ([]byte, error)
	// complete finishes a write of keyFile and file that a crash stopped (CompletePair).
	complete(file, keyFile string)
	// writeKeyAnd writes key to keyFile and data, which goes with it, to file (mode mode).
	writeKeyAnd(file string, data []byte, mode os.FileMode, keyFile string, key crypto.Signer) error
}

// disk keeps the files on disk, under their paths.
type disk struct{}

func (disk) read(file string) ([]byte, error) { return os.ReadFile(file) }
func (disk) complete(file, keyFile string)    { CompletePair(file, keyFile) }
func (disk) writeKeyAnd(file string, data []byte, mode os.FileMode, keyFile string, key crypto.Signer) error {
	return writeKeyAnd(file, data, mode, keyFile, key)
}

// Files is a PKI in memory: the content of each file by its name ("ca.crt"), the files a
// directory would hold. It is for a PKI kept elsewhere (a Secret): one built in a directory
// could outlive a crash there, keys and all, and costs a disk round trip for nothing. The
// methods are those of a directory's PKI; an Authority's or Pair's files are names in Files.
type Files map[string][]byte

// LoadOrCreateCA is LoadOrCreateCA for the CA name.{crt,key} in f.
func (f Files) LoadOrCreateCA(name, commonName string) (*Authority, error) {
	return loadOrCreateCA(f, "", name, commonName)
}

// Ensure is a.Ensure for the certificate name.{crt,key} in f.
func (f Files) Ensure(a *Authority, name string, spec Spec) (Pair, error) {
	return a.ensure(f, "", name, spec)
}

// EnsureKey is EnsureKey for the key pair name.{key,pub} in f.
func (f Files) EnsureKey(name string) (privFile, pubFile string, err error) {
	return ensureKey(f, "", name)
}

func (f Files) read(file string) ([]byte, error) {
	data, ok := f[file]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: file, Err: fs.ErrNotExist}
	}
	return data, nil
}

// complete has nothing to finish: a write to memory is never stopped half way.
func (f Files) complete(string, string) {}

func (f Files) writeKeyAnd(file string, data []byte, _ os.FileMode, keyFile string, key crypto.Signer) error {
	keyData, err := keyPEM(key)
	if err != nil {
		return err
	}
	f[keyFile], f[file] = keyData, data
	return nil
}
