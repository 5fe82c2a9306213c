package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
)

//go:embed npm/m2m-ssh.js
var npmLauncher []byte

const repoURL = "https://github.com/machine-to-machine/m2m-ssh"

// npmPlatform writes p's npm package (@m2m-ssh/linux-x64 and so on): the
// binary, with "os" and "cpu" so that npm installs only the one that fits.
func (r *release) npmPlatform(p platform, bin string) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	_, license, err := r.readme()
	if err != nil {
		return err
	}
	pkg, err := json.MarshalIndent(map[string]any{
		"name":            p.npmName(),
		"version":         r.plain(),
		"description":     fmt.Sprintf("The %s %s binary of m2m-ssh, installed by the m2m-ssh package", p.npmOS(), p.npmCPU()),
		"license":         "MIT",
		"repository":      map[string]string{"type": "git", "url": "git+" + repoURL + ".git"},
		"os":              []string{p.npmOS()},
		"cpu":             []string{p.npmCPU()},
		"preferUnplugged": true,
	}, "", "  ")
	if err != nil {
		return err
	}
	readme := fmt.Sprintf("# %s\n\nThe %s %s binary of [m2m-ssh](%s). Install `m2m-ssh`, which picks this package when it fits.\n",
		p.npmName(), p.npmOS(), p.npmCPU(), repoURL)
	return r.npmPack(fmt.Sprintf("m2m-ssh-%s-%s-%s.tgz", p.npmOS(), p.npmCPU(), r.plain()), []entry{
		{"package/LICENSE", 0o644, license},
		{"package/README.md", 0o644, []byte(readme)},
		{"package/bin/" + p.exe(), 0o755, exe},
		{"package/package.json", 0o644, append(pkg, '\n')},
	})
}

// npmMain writes the m2m-ssh package: the launcher, and every platform
// package as an optional dependency at this exact version.
func (r *release) npmMain() error {
	readme, license, err := r.readme()
	if err != nil {
		return err
	}
	optional := map[string]string{}
	for _, p := range allPlatforms {
		optional[p.npmName()] = r.plain()
	}
	pkg, err := json.MarshalIndent(map[string]any{
		"name":                 "m2m-ssh",
		"version":              r.plain(),
		"description":          "Bridge an MCP host's stdio session to an MCP server over SSH",
		"keywords":             []string{"mcp", "ssh", "model-context-protocol"},
		"homepage":             repoURL,
		"license":              "MIT",
		"repository":           map[string]string{"type": "git", "url": "git+" + repoURL + ".git"},
		"bin":                  map[string]string{"m2m-ssh": "bin/m2m-ssh.js"},
		"engines":              map[string]string{"node": ">=18"},
		"optionalDependencies": optional,
	}, "", "  ")
	if err != nil {
		return err
	}
	return r.npmPack("m2m-ssh-"+r.plain()+".tgz", []entry{
		{"package/LICENSE", 0o644, license},
		{"package/README.md", 0o644, readme},
		{"package/bin/m2m-ssh.js", 0o755, npmLauncher},
		{"package/package.json", 0o644, append(pkg, '\n')},
	})
}

// npmPack writes a tarball in npm pack's layout (everything under
// package/), which npm install and npm publish take as they are.
func (r *release) npmPack(name string, files []entry) error {
	data, err := tarGz(dirs(files), r.date)
	if err != nil {
		return err
	}
	return r.write(name, data)
}
