package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Bad flags of the process server are usage errors (exit 2) that name
// the flag and the value, found before anything is opened or made.
func TestPSUsageErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"ps", "--cert-dir", filepath.Join(dir, "certs"), "--passphrase-file", filepath.Join(dir, "pass"), "--listen", "127.0.0.1:0"}
	disk := []string{"--disk", "d0=" + filepath.Join(dir, "a.img")}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{append(disk, "--workload", "rate=-5"), []string{"--workload", "rate=-5"}},
		{append(disk, "--workload", "rate=NaN"), []string{"--workload", "rate=NaN"}},
		{append(disk, "--workload", "seed=2,crash=-1s"), []string{"--workload", "crash=-1s"}},
		{append(disk, "--workload", "writes=0"), []string{"--workload", "writes=0"}},
		{append(disk, "--disk", "d0="+filepath.Join(dir, "b.img")), []string{"--disk d0=" + filepath.Join(dir, "b.img"), "already given to " + filepath.Join(dir, "a.img")}},
		{append(disk, "--chunk-size", "1000"), []string{"--chunk-size", "chunk size 1000", "multiple of 4096"}},
		{append(disk, "--chunk-size", "0"), []string{"--chunk-size", "chunk size 0"}},
		{append(disk, "--chunk-size", "8388608"), []string{"--chunk-size", "chunk size 8388608", "up to 4194304"}},
	} {
		_, _, err := run(t, append(base, tc.args...)...)
		wantErr(t, err, true, tc.want...)
	}
}

// The process server reads its passphrase by the rules of every secret:
// a file others may read, or a passphrase under 16 characters, is
// refused before anything is opened, with what to do.
func TestPSPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	args := []string{"ps", "--cert-dir", filepath.Join(dir, "certs"), "--passphrase-file", pass, "--listen", "127.0.0.1:0",
		"--disk", "d0=" + filepath.Join(dir, "a.img")}
	os.WriteFile(pass, []byte("a passphrase of some length\n"), 0o600)
	os.Chmod(pass, 0o644)
	_, _, err := run(t, args...)
	wantErr(t, err, false, "passphrase file "+pass, "mode 0644", "chmod 600 "+pass)
	os.WriteFile(pass, []byte("too short\n"), 0o600)
	os.Chmod(pass, 0o600)
	_, _, err = run(t, args...)
	wantErr(t, err, false, "passphrase file "+pass, "9 characters", "at least 16")
	if _, err := os.Stat(filepath.Join(dir, "certs")); err == nil {
		t.Error("the certificate directory was made before the passphrase was checked")
	}
}
