package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// deb writes the Debian package for a Linux platform: /usr/bin/m2m-ssh
// and its copyright file. The ar container and its two tars are written
// here, so the .deb is as reproducible as the archives and needs no
// dpkg-deb on the machine that builds it.
func (r *release) deb(p platform, bin string) error {
	if p.goos != "linux" {
		return nil
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	_, license, err := r.readme()
	if err != nil {
		return err
	}
	data := []entry{
		{"./usr/bin/m2m-ssh", 0o755, exe},
		{"./usr/share/doc/m2m-ssh/copyright", 0o644, license},
	}
	var md5sums strings.Builder
	size := 0
	for _, f := range data {
		sum := md5.Sum(f.data)
		fmt.Fprintf(&md5sums, "%s  %s\n", hex.EncodeToString(sum[:]), strings.TrimPrefix(f.name, "./"))
		size += len(f.data)
	}
	control := fmt.Sprintf(`Package: m2m-ssh
Version: %s
Architecture: %s
Maintainer: m2m-ssh developers <m2m-ssh@users.noreply.github.com>
Installed-Size: %d
Section: net
Priority: optional
Homepage: %s
Description: bridge an MCP host's stdio session to an MCP server over SSH
 m2m-ssh makes an MCP server on another machine feel installed locally:
 an MCP host starts it as a stdio server, and it carries the session over
 SSH, with your OpenSSH configuration, ssh-agent and known_hosts.
`, r.debVersion(), p.goarch, (size+1023)/1024, repoURL)
	controlTar, err := tarGz([]entry{
		{"./control", 0o644, []byte(control)},
		{"./md5sums", 0o644, []byte(md5sums.String())},
	}, r.date)
	if err != nil {
		return err
	}
	tree := []entry{{name: "./"}, {name: "./usr/"}, {name: "./usr/bin/"}, data[0],
		{name: "./usr/share/"}, {name: "./usr/share/doc/"}, {name: "./usr/share/doc/m2m-ssh/"}, data[1]}
	dataTar, err := tarGz(tree, r.date)
	if err != nil {
		return err
	}
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []entry{
		{"debian-binary", 0o644, []byte("2.0\n")},
		{"control.tar.gz", 0o644, controlTar},
		{"data.tar.gz", 0o644, dataTar},
	} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", m.name, r.date.Unix(), 0, 0, 0o100644, len(m.data))
		ar.Write(m.data)
		if len(m.data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return r.write(fmt.Sprintf("m2m-ssh_%s_%s.deb", r.debVersion(), p.goarch), ar.Bytes())
}
