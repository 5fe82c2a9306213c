package main

import (
	"bytes"
	_ "embed"
	"os"
	"path/filepath"
	"text/template"
)

//go:embed homebrew/m2m-ssh.rb.tmpl
var formulaTemplate string

// formula writes m2m-ssh.rb, the Homebrew formula for the macOS and Linux
// archives just built: one url and sha256 per platform.
func (r *release) formula() error {
	type arch struct{ CPU, URL, SHA256 string }
	type system struct {
		OS    string
		Archs []arch
	}
	var systems []system
	for _, goos := range []string{"macos", "linux"} {
		s := system{OS: goos}
		for _, p := range r.platforms {
			if (p.goos == "darwin") != (goos == "macos") || p.goos == "windows" {
				continue
			}
			name := r.archives[p]
			data, err := os.ReadFile(filepath.Join(r.out, name))
			if err != nil {
				return err
			}
			cpu := map[string]string{"amd64": "intel", "arm64": "arm"}[p.goarch]
			s.Archs = append(s.Archs, arch{cpu, r.urlBase + "/" + r.version + "/" + name, sha256Hex(data)})
		}
		if len(s.Archs) > 0 {
			systems = append(systems, s)
		}
	}
	t, err := template.New("formula").Parse(formulaTemplate)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]any{"Version": r.version, "Plain": r.plain(), "Homepage": repoURL, "Systems": systems})
	if err != nil {
		return err
	}
	return r.write("m2m-ssh.rb", b.Bytes())
}
