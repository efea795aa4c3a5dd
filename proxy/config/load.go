package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// LoadFile reads and validates the configuration file at path, which is
// relative to dir when it is not absolute (dir "" means the working
// directory). Errors name the file as path. Environment references are
// resolved with lookupEnv (os.LookupEnv when nil).
func LoadFile(dir, path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	full := path
	if dir != "" && !filepath.IsAbs(path) {
		full = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(full)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return load(path, filepath.Dir(full), data, lookupEnv)
}

// Load decodes and validates data, which came from the file name (used in
// error positions and to resolve relative paths).
func Load(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	return load(name, filepath.Dir(name), data, lookupEnv)
}

func load(name, dir string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var cfg Config
	d := &decoder{file: name, lookupEnv: lookupEnv, dir: dir}
	root, err := d.parse(data)
	if err != nil {
		return nil, err
	}
	d.decode(root, &cfg)
	cfg.dir = dir
	d.hasAudit = cfg.Audit.File != ""
	validate(&cfg, d)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return &cfg, nil
}
