package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"path"
	"time"
)

// entry is a file of an archive or package.
type entry struct {
	name string
	mode os.FileMode // 0 for a directory entry written as name/
	data []byte
}

// archive writes p's archive: a folder named like the archive holding the
// binary, README.md and LICENSE.
func (r *release) archive(p platform, bin string) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	readme, license, err := r.readme()
	if err != nil {
		return err
	}
	dir := r.base(p)
	files := []entry{
		{dir + "/" + p.exe(), 0o755, exe},
		{dir + "/LICENSE", 0o644, license},
		{dir + "/README.md", 0o644, readme},
	}
	var data []byte
	name := dir + ".tar.gz"
	if p.goos == "windows" {
		name = dir + ".zip"
		data, err = zipFiles(files, r.date)
	} else {
		data, err = tarGz(files, r.date)
	}
	if err != nil {
		return err
	}
	r.archives[p] = name
	return r.write(name, data)
}

// tarGz makes a gzipped tar whose bytes depend only on files and mtime:
// fixed owner, no user names, no gzip name or time.
func tarGz(files []entry, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	gz, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: int64(f.mode), Size: int64(len(f.data)),
			ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if f.mode == 0 {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// zipFiles makes a zip whose bytes depend only on files and mtime.
func zipFiles(files []entry, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: mtime}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// dirs are the folder entries above files, in order, for formats that
// list them (npm's and Debian's tars).
func dirs(files []entry) []entry {
	seen := map[string]bool{}
	var out []entry
	for _, f := range files {
		var parents []string
		for d := path.Dir(f.name); d != "." && d != "/" && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			out = append(out, entry{name: d + "/"})
		}
		out = append(out, f)
	}
	return out
}
