// Command release makes m2m-ssh's release artifacts, the same bytes from
// the same commit on any machine with the same Go:
//
//	go run ./release [-version v1.2.3] [-out dist] [-platforms linux/amd64,...]
//
// For each platform it builds the binary (-trimpath, CGO off, no build ID,
// version, commit and date stamped) and writes, into -out: the archive
// (tar.gz, zip for Windows) with README and LICENSE, its CycloneDX SBOM,
// the npm platform package, the wheel and, for Linux, the .deb; then the
// npm main package, the Homebrew formula and SHA256SUMS. Every time
// stamp is the commit's (or SOURCE_DATE_EPOCH). Nothing is published.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	var r release
	var platforms string
	flag.StringVar(&r.version, "version", "", "version to stamp, vX.Y.Z[-pre] (default: the commit's v* tag, else v0.0.0-dev.DATE)")
	flag.StringVar(&r.out, "out", "dist", "directory to write; emptied first")
	flag.StringVar(&platforms, "platforms", strings.Join(names(allPlatforms), ","), "GOOS/GOARCH list")
	flag.StringVar(&r.urlBase, "url-base", "https://github.com/machine-to-machine/m2m-ssh/releases/download", "where the Homebrew formula finds the archives (a /TAG folder under it)")
	flag.Parse()
	ps, err := parsePlatforms(platforms)
	if err == nil {
		r.platforms = ps
		err = r.make()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "release: error: %v\n", err)
		os.Exit(1)
	}
}
