package main

import (
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// sbom writes p's CycloneDX 1.5 SBOM from the module list Go recorded in
// the binary itself (debug/buildinfo, what 'go version -m' prints), so it
// names exactly what was linked for that platform and nothing else.
func (r *release) sbom(p platform, bin string) error {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return err
	}
	type hash struct {
		Alg     string `json:"alg"`
		Content string `json:"content"`
	}
	type property struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	type component struct {
		Type       string     `json:"type"`
		Ref        string     `json:"bom-ref"`
		Name       string     `json:"name"`
		Version    string     `json:"version"`
		Purl       string     `json:"purl,omitempty"`
		Hashes     []hash     `json:"hashes,omitempty"`
		Properties []property `json:"properties,omitempty"`
	}
	type dependency struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	}
	purl := func(path, version string) string { return "pkg:golang/" + path + "@" + version + "?type=module" }
	main := component{
		Type: "application", Name: bi.Main.Path, Version: r.version,
		Ref: purl(bi.Main.Path, r.version), Purl: purl(bi.Main.Path, r.version),
		Properties: []property{{"cdx:gomod:build:env:GOOS", p.goos}, {"cdx:gomod:build:env:GOARCH", p.goarch}, {"cdx:gomod:build:env:CGO_ENABLED", "0"}},
	}
	comps := []component{{Type: "library", Name: "std", Version: bi.GoVersion,
		Ref: "pkg:golang/std@" + bi.GoVersion + "?type=module", Purl: "pkg:golang/std@" + bi.GoVersion + "?type=module"}}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		c := component{Type: "library", Name: m.Path, Version: m.Version, Ref: purl(m.Path, m.Version), Purl: purl(m.Path, m.Version)}
		// go.sum's h1: is a SHA-256 over the module's files.
		if sum, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(m.Sum, "h1:")); err == nil && len(sum) == 32 {
			c.Hashes = []hash{{"SHA-256", hex.EncodeToString(sum)}}
		}
		comps = append(comps, c)
	}
	deps := dependency{Ref: main.Ref, DependsOn: []string{}}
	for _, c := range comps {
		deps.DependsOn = append(deps.DependsOn, c.Ref)
	}
	doc := map[string]any{
		"bomFormat":   "CycloneDX",
		"specVersion": "1.5",
		"version":     1,
		"metadata": map[string]any{
			"timestamp": r.date.Format(time.RFC3339),
			"tools": map[string]any{"components": []component{{Type: "application", Name: "m2m-ssh release (go run ./release)", Version: r.version,
				Ref: "m2m-ssh-release"}}},
			"component": main,
		},
		"components":   comps,
		"dependencies": []dependency{deps},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return r.write(r.base(p)+".cdx.json", append(b, '\n'))
}
