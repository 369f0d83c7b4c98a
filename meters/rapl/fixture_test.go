package rapl

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/tools/txtar"
)

// loadFixture extracts testdata/NAME.txtar into a temporary directory and
// returns the sysfs root in it. A MODES file in the archive lists "MODE
// PATH" lines to chmod after extraction; it is not written.
func loadFixture(t testing.TB, name string) string {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var modes []byte
	for _, f := range ar.Files {
		if f.Name == "MODES" {
			modes = f.Data
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(modes))
	for sc.Scan() {
		mode, path, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil {
			t.Fatalf("%s MODES: %v", name, err)
		}
		if err := os.Chmod(filepath.Join(dir, filepath.FromSlash(path)), fs.FileMode(m)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "sys")
}

// unprivilegedOpen opens a file as a user who neither owns it nor is root
// would: only the "other" read bit counts. The tests run as root here,
// whom the kernel lets read a 0400 file, so the permission path would
// otherwise never be taken; this is the check the kernel makes for an
// ordinary user against root's energy_uj.
func unprivilegedOpen(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o004 == 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.EACCES}
	}
	return os.Open(path)
}
