package main

// The checks of the release artifacts, on real tools: sha256sum, npm and
// the MCP Inspector, python3's venv and pip, dpkg, ruby. With
// M2M_RELEASE_DIST naming a folder made by 'go run ./release' (.ci/run
// does so), they check that folder and rebuild it to compare; otherwise
// they make one for this machine's platform and one Windows platform.
// The Inspector is found in M2M_INSPECTOR_DIR, a folder where
// @modelcontextprotocol/inspector is installed. A missing tool skips a
// check, except under CI=true, where it fails.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

type built struct {
	dir       string
	version   string
	commit    string
	date      string
	platforms []platform
}

var (
	distOnce sync.Once
	dist     built
	distErr  error
	scratch  []string // folders made outside any one test, removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range scratch {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// artifacts returns the artifacts to check, making them on first use.
func artifacts(t *testing.T) built {
	t.Helper()
	if raceEnabled {
		t.Skip("the release checks run in the plain go test; the race detector adds nothing to them")
	}
	distOnce.Do(func() {
		dir := os.Getenv("M2M_RELEASE_DIST")
		if dir == "" {
			ps := []platform{{runtime.GOOS, runtime.GOARCH}}
			if runtime.GOOS != "windows" {
				ps = append(ps, platform{"windows", "amd64"})
			}
			dir, distErr = makeRelease("", ps)
			if distErr != nil {
				return
			}
		}
		dist, distErr = readMetadata(dir)
	})
	if distErr != nil {
		t.Fatal(distErr)
	}
	return dist
}

func makeRelease(version string, ps []platform) (string, error) {
	tmp, err := os.MkdirTemp("", "m2m-ssh-release-")
	if err != nil {
		return "", err
	}
	scratch = append(scratch, tmp)
	r := release{version: version, out: filepath.Join(tmp, "dist"), platforms: ps,
		urlBase: "https://github.com/machine-to-machine/m2m-ssh/releases/download"}
	return r.out, r.make()
}

func readMetadata(dir string) (built, error) {
	var m struct {
		Version, Commit, Date string
		Platforms             []string
	}
	b, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return built{}, err
	}
	ps, err := parsePlatforms(strings.Join(m.Platforms, ","))
	abs, _ := filepath.Abs(dir)
	return built{abs, m.Version, m.Commit, m.Date, ps}, err
}

func (b built) path(name string) string { return filepath.Join(b.dir, name) }

// glob returns the artifacts matching pattern; there must be some.
func (b built) glob(t *testing.T, pattern string) []string {
	t.Helper()
	m, _ := filepath.Glob(b.path(pattern))
	if len(m) == 0 {
		t.Fatalf("no %s in %s", pattern, b.dir)
	}
	sort.Strings(m)
	return m
}

func (b built) native() (platform, bool) {
	for _, p := range b.platforms {
		if p.goos == runtime.GOOS && p.goarch == runtime.GOARCH {
			return p, true
		}
	}
	return platform{}, false
}

// wantVersion is what --version prints for the stamped binaries.
func (b built) wantVersion() string {
	c := b.commit
	if hash, rest, _ := strings.Cut(c, "-"); len(hash) > 12 {
		c = strings.TrimSuffix(hash[:12]+"-"+rest, "-")
	}
	return fmt.Sprintf("m2m-ssh version %s (commit %s, %s)", b.version, c, b.date)
}

// Each packaging format spells the version its own way.
func TestVersionSpellings(t *testing.T) {
	for _, c := range []struct{ v, npm, py, deb string }{
		{"v1.2.3", "1.2.3", "1.2.3", "1.2.3"},
		{"v1.2.3-rc.1", "1.2.3-rc.1", "1.2.3rc1", "1.2.3~rc.1"},
		{"v0.4.0-beta.2", "0.4.0-beta.2", "0.4.0b2", "0.4.0~beta.2"},
		{"v0.0.0-dev.20261201204445", "0.0.0-dev.20261201204445", "0.0.0.dev20261201204445", "0.0.0~dev.20261201204445"},
	} {
		r := &release{version: c.v}
		if got := [3]string{r.plain(), r.pyVersion(), r.debVersion()}; got != [3]string{c.npm, c.py, c.deb} {
			t.Errorf("%s: npm, PEP 440, Debian = %q, want %q", c.v, got, [3]string{c.npm, c.py, c.deb})
		}
	}
	for _, bad := range []string{"1.2.3", "v1.2", "v1.2.3-snapshot", "v1.2.3+meta"} {
		if semver.MatchString(bad) {
			t.Errorf("%s accepted", bad)
		}
	}
}

// Building again gives the same bytes, file by file.
func TestReproducible(t *testing.T) {
	b := artifacts(t)
	again, err := makeRelease(b.version, b.platforms)
	if err != nil {
		t.Fatal(err)
	}
	if now, err := readMetadata(again); err != nil || now.commit != b.commit {
		t.Fatalf("%s was built from commit %s, and the tree is now at %s: make it again", b.dir, b.commit, now.commit)
	}
	first, err := os.ReadFile(b.path("SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(filepath.Join(again, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("a second build differs:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	t.Logf("two builds, identical SHA256SUMS:\n%s", first)
}

// SHA256SUMS lists every artifact, and sha256sum agrees with it.
func TestChecksums(t *testing.T) {
	b := artifacts(t)
	sums, err := os.ReadFile(b.path("SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(b.dir)
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != "SHA256SUMS" && !bytes.Contains(sums, []byte("  "+e.Name()+"\n")) {
			t.Errorf("SHA256SUMS does not list %s", e.Name())
		}
	}
	sha := sshtest.LookPath(t, "sha256sum")
	cmd := exec.Command(sha, "--check", "--strict", "SHA256SUMS")
	cmd.Dir = b.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum --check: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), ": OK\n"); n != bytes.Count(sums, []byte("\n")) || n == 0 {
		t.Fatalf("sha256sum checked %d files:\n%s", n, out)
	}
}

// Every archive holds a binary stamped with the release's version, built
// as a release is; the one for this machine says so itself.
func TestArchives(t *testing.T) {
	b := artifacts(t)
	native, _ := b.native()
	for _, p := range b.platforms {
		r := &release{version: b.version}
		name := r.base(p) + ".tar.gz"
		if p.goos == "windows" {
			name = r.base(p) + ".zip"
		}
		files := unpack(t, b.path(name))
		for _, f := range []string{p.exe(), "README.md", "LICENSE"} {
			if _, ok := files[r.base(p)+"/"+f]; !ok {
				t.Errorf("%s has no %s/%s", name, r.base(p), f)
			}
		}
		bin := filepath.Join(t.TempDir(), p.exe())
		if err := os.WriteFile(bin, files[r.base(p)+"/"+p.exe()], 0o755); err != nil {
			t.Fatal(err)
		}
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		for k, v := range map[string]string{"GOOS": p.goos, "GOARCH": p.goarch, "CGO_ENABLED": "0", "-trimpath": "true"} {
			if settings[k] != v {
				t.Errorf("%s: built with %s=%q, want %q", name, k, settings[k], v)
			}
		}
		// -trimpath keeps -ldflags out of the build info: look for the
		// stamps themselves, and ask go for the build ID.
		exe := files[r.base(p)+"/"+p.exe()]
		for _, stamp := range []string{b.version, b.commit, b.date} {
			if !bytes.Contains(exe, []byte(stamp)) {
				t.Errorf("%s: the binary does not hold %q", name, stamp)
			}
		}
		if id := strings.TrimSpace(run(t, "go", "tool", "buildid", bin)); id != "" {
			t.Errorf("%s: build ID %q, want none", name, id)
		}
		if p == native {
			if got := run(t, bin, "--version"); got != b.wantVersion()+"\n" {
				t.Errorf("%s --version = %q, want %q", name, got, b.wantVersion())
			}
			t.Logf("%s: %s", name, strings.TrimSpace(run(t, bin, "--version")))
		}
	}
}

func unpack(t *testing.T, archive string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	if strings.HasSuffix(archive, ".zip") {
		zr, err := zip.OpenReader(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			files[f.Name], _ = io.ReadAll(rc)
			rc.Close()
		}
		return files
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
}

// The npm packages install from their tarballs with no registry (npm
// would fetch the platform packages from it; overrides point them at the
// tarballs instead), in a folder named like npx's cache, and the Inspector
// lists the demo's tools through the launcher.
func TestNpm(t *testing.T) {
	b := artifacts(t)
	npm := sshtest.LookPath(t, "npm")
	native, ok := b.native()
	if !ok {
		t.Skipf("no %s/%s build to install", runtime.GOOS, runtime.GOARCH)
	}
	dir := filepath.Join(t.TempDir(), "_npx", "check")
	overrides := map[string]string{}
	for _, p := range b.platforms {
		overrides[p.npmName()] = "file:" + b.path(fmt.Sprintf("m2m-ssh-%s-%s-%s.tgz", p.npmOS(), p.npmCPU(), strings.TrimPrefix(b.version, "v")))
	}
	pkg, _ := json.Marshal(map[string]any{
		"name": "check", "private": true,
		"dependencies": map[string]string{"m2m-ssh": "file:" + b.path("m2m-ssh-"+strings.TrimPrefix(b.version, "v")+".tgz")},
		"overrides":    overrides,
	})
	writeFile(t, filepath.Join(dir, "package.json"), string(pkg))
	cmd := exec.Command(npm, "install", "--offline", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install --offline: %v\n%s", err, out)
	}
	for _, p := range b.platforms {
		_, err := os.Stat(filepath.Join(dir, "node_modules", p.npmName(), "bin", p.exe()))
		if installed := err == nil; installed != (p == native) {
			t.Errorf("%s installed: %v; want it only for this machine, %s", p.npmName(), installed, native.npmName())
		}
	}
	launcher := filepath.Join(dir, "node_modules", ".bin", "m2m-ssh")
	if got := run(t, launcher, "--version"); got != b.wantVersion()+"\n" {
		t.Errorf("npm launcher --version = %q, want %q", got, b.wantVersion())
	}
	// npx, as a host's config runs it, finds the installed package.
	cmd = exec.Command(sshtest.LookPath(t, "npx"), "--no-install", "m2m-ssh", "--version")
	cmd.Dir = dir
	if out, err := cmd.Output(); err != nil || string(out) != b.wantVersion()+"\n" {
		t.Errorf("npx m2m-ssh --version: %v, %q; want %q", err, out, b.wantVersion())
	}
	checkExitStatus(t, launcher)
	checkConfig(t, launcher, `"command": "npx"`)
	checkSignal(t, launcher)
	inspect(t, launcher)
}

// The wheel installs with pip from the file alone into a fresh venv, in a
// folder named like uvx's cache, and the Inspector lists the demo's
// tools through its m2m-ssh command. Every wheel's RECORD holds.
func TestWheel(t *testing.T) {
	b := artifacts(t)
	python := sshtest.LookPath(t, "python3")
	for _, whl := range b.glob(t, "*.whl") {
		checkRecord(t, python, whl)
	}
	native, ok := b.native()
	if !ok {
		t.Skipf("no %s/%s build to install", runtime.GOOS, runtime.GOARCH)
	}
	venv := filepath.Join(t.TempDir(), "uv", "archive-v0", "check")
	if out, err := exec.Command(python, "-m", "venv", venv).CombinedOutput(); err != nil {
		if sshtest.InCI() {
			t.Fatalf("python3 -m venv: %v\n%s", err, out)
		}
		t.Skipf("python3 -m venv: %v\n%s", err, out)
	}
	r := &release{version: b.version}
	whl := b.path(fmt.Sprintf("m2m_ssh-%s-py3-none-%s.whl", r.pyVersion(), native.wheelTag()))
	pip := filepath.Join(venv, "bin", "pip")
	if out, err := exec.Command(pip, "install", "--no-index", "--no-deps", "--disable-pip-version-check", whl).CombinedOutput(); err != nil {
		t.Fatalf("pip install --no-index %s: %v\n%s", filepath.Base(whl), err, out)
	}
	command := filepath.Join(venv, "bin", "m2m-ssh")
	if got := run(t, command, "--version"); got != b.wantVersion()+"\n" {
		t.Errorf("wheel's m2m-ssh --version = %q, want %q", got, b.wantVersion())
	}
	checkExitStatus(t, command)
	checkConfig(t, command, `"command": "uvx"`)
	checkSignal(t, command)
	inspect(t, command)
}

// checkRecord checks a wheel with Python's own zipfile and hashlib: every
// file is in RECORD with its hash and size, and the tags match the name.
func checkRecord(t *testing.T, python, whl string) {
	t.Helper()
	const script = `
import base64, hashlib, sys, zipfile
whl = sys.argv[1]
name, version, py, abi, plat = whl.rsplit("/", 1)[-1][:-4].split("-")
z = zipfile.ZipFile(whl)
info = "%s-%s.dist-info/" % (name, version)
record = {}
for line in z.read(info + "RECORD").decode().splitlines():
    path, digest, size = line.rsplit(",", 2)
    record[path] = (digest, size)
for zi in z.infolist():
    data = z.read(zi)
    if zi.filename == info + "RECORD":
        continue
    digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert record.pop(zi.filename) == (digest, str(len(data))), zi.filename
    if "/bin/m2m-ssh" in zi.filename:
        assert zi.external_attr >> 16 & 0o111, "binary not executable"
assert list(record) == [info + "RECORD"], record
tags = sorted(l.split(": ")[1] for l in z.read(info + "WHEEL").decode().splitlines() if l.startswith("Tag: "))
assert tags == sorted("%s-%s-%s" % (py, abi, p) for p in plat.split(".")), tags
print("ok", len(z.infolist()))
`
	out, err := exec.Command(python, "-c", script, whl).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok ") {
		t.Errorf("%s: %v\n%s", filepath.Base(whl), err, out)
	}
}

// The .deb is what dpkg expects; under CI (root) it is installed with
// dpkg -i and /usr/bin/m2m-ssh runs the demo for the Inspector.
func TestDeb(t *testing.T) {
	b := artifacts(t)
	dpkgDeb := sshtest.LookPath(t, "dpkg-deb")
	native, ok := b.native()
	if !ok || native.goos != "linux" {
		t.Skipf("no linux build for this machine (%s/%s)", runtime.GOOS, runtime.GOARCH)
	}
	r := &release{version: b.version}
	deb := b.path(fmt.Sprintf("m2m-ssh_%s_%s.deb", r.debVersion(), native.goarch))
	for field, want := range map[string]string{"Package": "m2m-ssh", "Version": r.debVersion(), "Architecture": native.goarch} {
		if got := strings.TrimSpace(run(t, dpkgDeb, "--field", deb, field)); got != want {
			t.Errorf("%s: %s = %q, want %q", filepath.Base(deb), field, got, want)
		}
	}
	contents := run(t, dpkgDeb, "--contents", deb)
	if !regexp.MustCompile(`(?m)^-rwxr-xr-x (root/root|0/0) .* \./usr/bin/m2m-ssh$`).MatchString(contents) {
		t.Errorf("%s does not hold an executable ./usr/bin/m2m-ssh owned by root:\n%s", filepath.Base(deb), contents)
	}
	root := t.TempDir()
	run(t, dpkgDeb, "-x", deb, root)
	if got := run(t, filepath.Join(root, "usr", "bin", "m2m-ssh"), "--version"); got != b.wantVersion()+"\n" {
		t.Errorf("the .deb's m2m-ssh --version = %q, want %q", got, b.wantVersion())
	}
	if !sshtest.InCI() || os.Geteuid() != 0 {
		t.Log("dpkg -i runs only under CI=true as root: it changes /usr/bin")
		return
	}
	dpkg := sshtest.LookPath(t, "dpkg")
	run(t, dpkg, "-i", deb)
	t.Cleanup(func() { exec.Command(dpkg, "-r", "m2m-ssh").Run() })
	if got := run(t, "/usr/bin/m2m-ssh", "--version"); got != b.wantVersion()+"\n" {
		t.Errorf("/usr/bin/m2m-ssh --version = %q, want %q", got, b.wantVersion())
	}
	inspect(t, "/usr/bin/m2m-ssh")
}

// The formula is Ruby, and names each archive with its checksum.
func TestFormula(t *testing.T) {
	b := artifacts(t)
	formula, err := os.ReadFile(b.path("m2m-ssh.rb"))
	if err != nil {
		t.Fatal(err)
	}
	sums, _ := os.ReadFile(b.path("SHA256SUMS"))
	pairs := regexp.MustCompile(`url "[^"]*/([^"/]+)"\s+sha256 "([0-9a-f]{64})"`).FindAllStringSubmatch(string(formula), -1)
	want := 0
	for _, p := range b.platforms {
		if p.goos != "windows" {
			want++
		}
	}
	if len(pairs) != want {
		t.Errorf("the formula has %d url/sha256 pairs, want %d:\n%s", len(pairs), want, formula)
	}
	for _, m := range pairs {
		if !strings.Contains(string(sums), m[2]+"  "+m[1]+"\n") {
			t.Errorf("the formula's sha256 for %s is not SHA256SUMS's", m[1])
		}
	}
	ruby := sshtest.LookPath(t, "ruby")
	if out := run(t, ruby, "-c", b.path("m2m-ssh.rb")); !strings.Contains(out, "Syntax OK") {
		t.Errorf("ruby -c: %s", out)
	}
}

// checkExitStatus: the binary's exit status comes through the launcher:
// 255 when the host cannot be reached (nothing listens on port 1), which
// neither node nor Python exits with of its own.
func checkExitStatus(t *testing.T, command string) {
	t.Helper()
	cmd := exec.Command(command, "-F", os.DevNull, "-o", "Port=1", "127.0.0.1")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 {
		t.Errorf("%s with an unreachable host: %v; want exit status 255", command, err)
	}
}

// checkConfig: config names the runner the launcher detected.
func checkConfig(t *testing.T, command, want string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	writeFile(t, cfg, "Host buildbox\n  HostName 10.0.0.5\n")
	cmd := exec.Command(command, "config", "-F", cfg, "buildbox")
	cmd.Env = append(os.Environ(), "M2M_SSH_INSTALLER=")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), `"m2m-ssh",`) {
		t.Errorf("%s config: %v; want %s then m2m-ssh:\n%s", command, err, want, out)
	}
}

// checkSignal: SIGTERM to the launcher ends the session the demo serves,
// and the launcher with it.
func checkSignal(t *testing.T, command string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	cmd := exec.Command(command, "demo")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr sshtest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "connected") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%s demo did not connect:\n%s", command, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s demo went on after SIGTERM:\n%s", command, stderr.String())
	}
}

// inspect runs the README's Inspector command on 'command demo' and
// checks that it lists the demo's tools.
func inspect(t *testing.T, command string) {
	t.Helper()
	dir := os.Getenv("M2M_INSPECTOR_DIR")
	if dir == "" {
		if sshtest.InCI() {
			t.Fatal("M2M_INSPECTOR_DIR is not set; .ci/run installs @modelcontextprotocol/inspector there")
		}
		t.Skip("M2M_INSPECTOR_DIR is not set (a folder where @modelcontextprotocol/inspector is installed)")
	}
	npx := sshtest.LookPath(t, "npx")
	cmd := exec.Command(npx, "--no-install", "@modelcontextprotocol/inspector", "--cli", command, "demo", "--method", "tools/list")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspector --cli %s demo: %v\n%s%s", command, err, out, stderr.String())
	}
	var list struct {
		Tools []struct{ Name string }
	}
	if err := json.Unmarshal(out[bytes.IndexByte(out, '{'):], &list); err != nil {
		t.Fatalf("inspector output is not a tools/list result: %v\n%s", err, out)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "echo,time" {
		t.Errorf("the Inspector lists %v through %s; want echo and time", names, command)
	}
	t.Logf("inspector --cli %s demo --method tools/list: %v", command, names)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
