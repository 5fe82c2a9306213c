package main

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

var (
	//go:embed python/__init__.py
	pyInit []byte
	//go:embed python/__main__.py
	pyMain []byte
)

// wheel writes p's wheel, as ruff and uv ship theirs: a platform wheel
// whose package holds the binary. Its m2m-ssh command is a small Python
// entry point that execs the binary, so uvx m2m-ssh and pipx run m2m-ssh
// work, and it can tell them apart from an installed copy (installer in
// python/__main__.py). Written here rather than by a build backend, since
// the zip is simple and PyPI cannot be reached to install one.
func (r *release) wheel(p platform, bin string) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	readme, license, err := r.readme()
	if err != nil {
		return err
	}
	v := r.pyVersion()
	info := "m2m_ssh-" + v + ".dist-info/"
	tag := "py3-none-" + p.wheelTag()
	metadata := fmt.Sprintf(`Metadata-Version: 2.1
Name: m2m-ssh
Version: %s
Summary: Bridge an MCP host's stdio session to an MCP server over SSH
Home-page: %s
License: MIT
Project-URL: Source, %s
Keywords: mcp,ssh,model-context-protocol
Classifier: License :: OSI Approved :: MIT License
Classifier: Programming Language :: Go
Requires-Python: >=3.8
Description-Content-Type: text/markdown

%s`, v, repoURL, repoURL, readme)
	var wheelFile strings.Builder
	fmt.Fprintf(&wheelFile, "Wheel-Version: 1.0\nGenerator: m2m-ssh release (go run ./release)\nRoot-Is-Purelib: false\n")
	for _, t := range strings.Split(p.wheelTag(), ".") {
		fmt.Fprintf(&wheelFile, "Tag: py3-none-%s\n", t)
	}
	files := []entry{
		{"m2m_ssh/__init__.py", 0o644, pyInit},
		{"m2m_ssh/__main__.py", 0o644, pyMain},
		{"m2m_ssh/bin/" + p.exe(), 0o755, exe},
		{info + "LICENSE", 0o644, license},
		{info + "METADATA", 0o644, []byte(metadata)},
		{info + "WHEEL", 0o644, []byte(wheelFile.String())},
		{info + "entry_points.txt", 0o644, []byte("[console_scripts]\nm2m-ssh = m2m_ssh.__main__:main\n")},
	}
	var record strings.Builder
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.data))
	}
	fmt.Fprintf(&record, "%sRECORD,,\n", info)
	files = append(files, entry{info + "RECORD", 0o644, []byte(record.String())})
	data, err := zipFiles(files, r.date)
	if err != nil {
		return err
	}
	return r.write(fmt.Sprintf("m2m_ssh-%s-%s.whl", v, tag), data)
}
