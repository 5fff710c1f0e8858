// Command mkdeb builds clusterkeep's Debian package from deploy/debian/nfpm.yaml
// with nfpm used as a library, so that the package needs nothing but Go to
// build. scripts/build-deb.sh stages the files (binary, man pages,
// completions) and calls it; it is a module of its own so that the main
// module does not carry nfpm's dependencies.
//
//	go run . -config ../debian/nfpm.yaml -stage DIR -version V -arch amd64 -o FILE.deb
//
// ${ROOT} (the repository), ${STAGE}, ${VERSION} and ${ARCH} in the
// configuration (its version, architecture, files and scripts) are
// replaced by the flags' values.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

func main() {
	config := flag.String("config", "", "nfpm configuration file")
	stage := flag.String("stage", "", "directory of the built files the configuration names as ${STAGE}")
	version := flag.String("version", "", "package version (Debian syntax, taken as is)")
	arch := flag.String("arch", "amd64", "Debian architecture")
	out := flag.String("o", "", "the .deb file to write")
	flag.Parse()
	if err := run(*config, *stage, *version, *arch, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run(config, stage, version, arch, out string) error {
	if config == "" || stage == "" || version == "" || out == "" {
		return fmt.Errorf("-config, -stage, -version and -o are required")
	}
	config, err := filepath.Abs(config)
	if err != nil {
		return err
	}
	if stage, err = filepath.Abs(stage); err != nil {
		return err
	}
	vars := map[string]string{
		"ROOT":    filepath.Dir(filepath.Dir(filepath.Dir(config))),
		"STAGE":   stage,
		"VERSION": version,
		"ARCH":    arch,
	}
	mapping := func(k string) string { return vars[k] }
	cfg, err := nfpm.ParseFileWithEnvMapping(config, mapping)
	if err != nil {
		return fmt.Errorf("read %s: %w", config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return fmt.Errorf("configuration for deb: %w", err)
	}
	// nfpm expands the variables of only some fields; the files' and the
	// scripts' paths are expanded here.
	for _, c := range info.Contents {
		c.Source, c.Destination = os.Expand(c.Source, mapping), os.Expand(c.Destination, mapping)
	}
	s := &info.Scripts
	for _, p := range []*string{&s.PreInstall, &s.PostInstall, &s.PreRemove, &s.PostRemove} {
		*p = os.Expand(*p, mapping)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("check the package's contents: %w", err)
	}
	tmp := out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		return fmt.Errorf("package %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
