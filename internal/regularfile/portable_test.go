package regularfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The rules that hold on every platform, Windows included: a directory is
// refused, a file over the limit is refused, and the null device is known.
func TestPortable(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 11), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir, 10); !isNotRegular(err) {
		t.Errorf("Read(directory) = %v, want not a regular file", err)
	}
	var tooLarge *TooLargeError
	if _, err := Read(big, 10); !errors.As(err, &tooLarge) || tooLarge.Path != big {
		t.Errorf("Read(11 bytes, limit 10) = %v, want too large", err)
	}
	if data, err := Read(big, 11); err != nil || len(data) != 11 {
		t.Errorf("Read(11 bytes, limit 11) = %d bytes, %v", len(data), err)
	}
	_, fi, err := Open(os.DevNull)
	if err == nil || !IsDevNull(fi) {
		t.Errorf("Open(%s) = %v, IsDevNull %v; want refused and recognised", os.DevNull, err, IsDevNull(fi))
	}
	f, fi, err := Open(big)
	if err != nil || IsDevNull(fi) {
		t.Fatalf("Open(regular) = %v, IsDevNull %v", err, IsDevNull(fi))
	}
	f.Close() // Windows cannot remove the directory of an open file

}

func isNotRegular(err error) bool {
	var nr *NotRegularError
	return errors.As(err, &nr)
}
