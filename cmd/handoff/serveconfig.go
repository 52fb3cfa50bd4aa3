package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// envName is the environment variable of a serve flag: HANDOFF_ and the
// flag's name in capitals, - as _ (--public-url: HANDOFF_PUBLIC_URL).
func envName(flagName string) string {
	return "HANDOFF_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// settle gives each flag of fs not set on the command line its value from
// the environment (envName) or, failing that, from the YAML config file
// (keys are the flags' names): the command line wins over the environment,
// which wins over the file. An error names the file and line, or the
// variable, the key, and the rule the value breaks.
func settle(fs *flag.FlagSet, configFlag, file string) error {
	onCommandLine := map[string]bool{configFlag: true}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	type entry struct {
		value string
		line  int
	}
	inFile := map[string]entry{}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--%s: %w", configFlag, err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("--%s %s: not YAML: %w", configFlag, file, err)
		}
		if len(doc.Content) > 0 {
			m := doc.Content[0]
			if m.Kind != yaml.MappingNode {
				return fmt.Errorf("%s:%d: must be a mapping of settings (db: postgres://..., token: ...)", file, m.Line)
			}
			for i := 0; i+1 < len(m.Content); i += 2 {
				k, v := m.Content[i], m.Content[i+1]
				if fs.Lookup(k.Value) == nil || k.Value == configFlag {
					return fmt.Errorf("%s:%d: key %q: not a setting of %s (known: %s)", file, k.Line, k.Value, fs.Name(), known(fs, configFlag))
				}
				if _, dup := inFile[k.Value]; dup {
					return fmt.Errorf("%s:%d: key %q: given twice", file, k.Line, k.Value)
				}
				if v.Kind != yaml.ScalarNode {
					return fmt.Errorf("%s:%d: key %q: must be a single value, not a list or mapping", file, v.Line, k.Value)
				}
				inFile[k.Value] = entry{v.Value, v.Line}
			}
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if onCommandLine[f.Name] {
			return
		}
		env := envName(f.Name)
		if v := os.Getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("$%s: %q: must be %s", env, v, rule(f)))
			}
			return
		}
		if e, ok := inFile[f.Name]; ok {
			if err := fs.Set(f.Name, e.value); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: key %q: %q must be %s", file, e.line, f.Name, e.value, rule(f)))
			}
		}
	})
	return errors.Join(errs...)
}

// rule says what a flag's value must be.
func rule(f *flag.Flag) string {
	switch f.Value.(flag.Getter).Get().(type) {
	case time.Duration:
		return "a duration such as 10s or 1m"
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	}
	return "a string"
}

func known(fs *flag.FlagSet, skip string) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != skip {
			names = append(names, f.Name)
		}
	})
	sort.Strings(names)
	return strings.Join(names, ", ")
}
