package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// release is one run of the release build.
type release struct {
	version   string // vX.Y.Z[-pre]
	commit    string // full hash, -dirty when the tree had changes
	date      time.Time
	out       string
	urlBase   string
	platforms []platform
	root      string // the module's directory

	archives map[platform]string // archive file names, for the formula
}

// semver is the version form accepted: what npm, PEP 440 and Debian can
// each spell (see pyVersion, debVersion).
var semver = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)(?:-(dev|alpha|beta|rc)\.(\d+))?$`)

func (r *release) make() error {
	if err := r.describe(); err != nil {
		return err
	}
	if err := os.RemoveAll(r.out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(r.out, "bin"), 0o755); err != nil {
		return err
	}
	r.archives = map[platform]string{}
	for _, p := range r.platforms {
		fmt.Fprintf(os.Stderr, "release: %s %s\n", r.version, p)
		bin, err := r.build(p)
		if err != nil {
			return err
		}
		steps := []func(platform, string) error{r.archive, r.sbom, r.npmPlatform, r.wheel, r.deb}
		for _, step := range steps {
			if err := step(p, bin); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	for _, step := range []func() error{r.npmMain, r.formula, r.metadata, r.checksums} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// describe fills in the version, commit and date from git and the
// environment where they were not given.
func (r *release) describe() error {
	root, err := filepath.Abs(moduleRoot())
	if err != nil {
		return err
	}
	r.root = root
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = r.root
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	r.commit = git("rev-parse", "HEAD")
	if r.commit != "" && git("status", "--porcelain", "--untracked-files=no") != "" {
		r.commit += "-dirty"
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		epoch = git("log", "-1", "--format=%ct")
	}
	if epoch == "" {
		return fmt.Errorf("no date to stamp: set SOURCE_DATE_EPOCH outside a git checkout")
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
	}
	r.date = time.Unix(sec, 0).UTC()
	if r.version == "" {
		r.version = git("describe", "--tags", "--exact-match", "--match", "v*", "HEAD")
		if r.version == "" || strings.HasSuffix(r.commit, "-dirty") {
			r.version = "v0.0.0-dev." + r.date.Format("20060102150405")
		}
	}
	if !semver.MatchString(r.version) {
		return fmt.Errorf("version %q: want vX.Y.Z or vX.Y.Z-{dev,alpha,beta,rc}.N", r.version)
	}
	return nil
}

// moduleRoot is where go.mod is: the current directory or one above it.
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// build compiles m2m-ssh for p into out/bin/OS_ARCH and returns its path.
// Everything that could differ between machines is pinned: paths
// (-trimpath), the build ID, cgo, the CPU level, GOFLAGS, and VCS stamps
// (the commit is stamped explicitly instead).
func (r *release) build(p platform) (string, error) {
	bin := filepath.Join(r.out, "bin", p.goos+"_"+p.goarch, p.exe())
	ldflags := fmt.Sprintf("-s -w -buildid= -X main.version=%s -X main.commit=%s -X main.date=%s",
		r.version, r.commit, r.date.Format(time.RFC3339))
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, ".")
	cmd.Dir = r.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.goos, "GOARCH="+p.goarch,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=", "GOEXPERIMENT=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return filepath.Abs(bin)
}

// base is the stem of p's archive and SBOM: m2m-ssh_v1.2.3_linux_amd64.
func (r *release) base(p platform) string {
	return fmt.Sprintf("m2m-ssh_%s_%s_%s", r.version, p.goos, p.goarch)
}

// plain is the version without its v, as npm and Homebrew spell it.
func (r *release) plain() string { return strings.TrimPrefix(r.version, "v") }

// pyVersion spells the version as PEP 440 does: 1.2.3rc1, 1.2.3.dev4.
func (r *release) pyVersion() string {
	m := semver.FindStringSubmatch(r.version)
	v := m[1] + "." + m[2] + "." + m[3]
	switch m[4] {
	case "dev":
		return v + ".dev" + m[5]
	case "alpha":
		return v + "a" + m[5]
	case "beta":
		return v + "b" + m[5]
	case "rc":
		return v + "rc" + m[5]
	}
	return v
}

// debVersion spells it as Debian does, where ~ sorts before the release.
func (r *release) debVersion() string { return strings.Replace(r.plain(), "-", "~", 1) }

func (r *release) write(name string, data []byte) error {
	return os.WriteFile(filepath.Join(r.out, name), data, 0o644)
}

func (r *release) readme() ([]byte, []byte, error) {
	readme, err := os.ReadFile(filepath.Join(r.root, "README.md"))
	if err != nil {
		return nil, nil, err
	}
	license, err := os.ReadFile(filepath.Join(r.root, "LICENSE"))
	return readme, license, err
}

// metadata records what was built, for the checks (release_test.go).
func (r *release) metadata() error {
	b, err := json.MarshalIndent(map[string]any{
		"version":   r.version,
		"commit":    r.commit,
		"date":      r.date.Format(time.RFC3339),
		"platforms": names(r.platforms),
	}, "", "  ")
	if err != nil {
		return err
	}
	return r.write("metadata.json", append(b, '\n'))
}

// checksums writes SHA256SUMS, in sha256sum's format, over every file
// of out but the binaries folder.
func (r *release) checksums() error {
	entries, err := os.ReadDir(r.out)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != "SHA256SUMS" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(r.out, n))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), n)
	}
	return r.write("SHA256SUMS", b.Bytes())
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
