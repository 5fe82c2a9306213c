package main

import (
	"fmt"
	"strings"
)

// platform is one GOOS/GOARCH pair that is released.
type platform struct{ goos, goarch string }

var allPlatforms = []platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

func (p platform) String() string { return p.goos + "/" + p.goarch }

// exe is the binary's file name.
func (p platform) exe() string {
	if p.goos == "windows" {
		return "m2m-ssh.exe"
	}
	return "m2m-ssh"
}

// npmOS and npmCPU are Node's names (process.platform, process.arch),
// which npm matches against a package's "os" and "cpu".
func (p platform) npmOS() string {
	if p.goos == "windows" {
		return "win32"
	}
	return p.goos
}

func (p platform) npmCPU() string {
	if p.goarch == "amd64" {
		return "x64"
	}
	return p.goarch
}

// npmName is the platform package's name, as in esbuild and Biome.
func (p platform) npmName() string { return "@m2m-ssh/" + p.npmOS() + "-" + p.npmCPU() }

// wheelTag is the wheel's platform tag. The binary is static (CGO off), so
// one Linux wheel serves glibc and musl; Go 1.26 needs macOS 12.
func (p platform) wheelTag() string {
	m := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[p.goarch]
	switch p.goos {
	case "linux":
		return fmt.Sprintf("manylinux_2_17_%[1]s.manylinux2014_%[1]s.musllinux_1_1_%[1]s", m)
	case "darwin":
		return "macosx_12_0_" + map[string]string{"amd64": "x86_64", "arm64": "arm64"}[p.goarch]
	}
	return "win_" + p.goarch
}

func names(ps []platform) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return s
}

func parsePlatforms(list string) ([]platform, error) {
	var ps []platform
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, p := range allPlatforms {
			if p.String() == strings.TrimSpace(name) {
				ps = append(ps, p)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown platform %q: use %s", name, strings.Join(names(allPlatforms), ","))
		}
	}
	return ps, nil
}
