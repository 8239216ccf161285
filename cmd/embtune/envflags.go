package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
)

// flagEnvName is the environment form of a flag: --max-batch-tokens is
// EMBTUNE_MAX_BATCH_TOKENS.
func flagEnvName(name string) string {
	return "EMBTUNE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ownEnv finds a variable a flag's help names as its own, "(env
// EMBTUNE_STORE_TABLE)", where it differs from flagEnvName: --table is the
// store's table, EMBTUNE_STORE_TABLE for every command that has it.
var ownEnv = regexp.MustCompile(`\(env (EMBTUNE_[A-Z0-9_]+)`)

// envNameOf is the one environment variable that sets f.
func envNameOf(f *flag.Flag) string {
	if m := ownEnv.FindStringSubmatch(f.Usage); m != nil {
		return m[1]
	}
	return flagEnvName(f.Name)
}

// parseFlagsEnv parses args like parseFlags, then sets every flag that the
// command line did not give from its environment variable, as TEI's
// `#[clap(long, env)]` does: the command line wins over the environment.
// It is for commands that containers start without arguments (the
// SageMaker inference container runs `serve` bare, configured by the
// model's Environment). A value that does not parse is a usage error that
// names the variable. fs.Visit reports environment-set flags as given. A
// flag whose help names its own variable ("(env EMBTUNE_STORE_TABLE)")
// reads that one only.
func parseFlagsEnv(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	_, err := parseFlagsEnvCLI(fs, args, lookupEnv)
	return err
}

// parseFlagsEnvCLI is parseFlagsEnv, and also returns the flags the command
// line gave (the environment's left out).
func parseFlagsEnvCLI(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) (map[string]bool, error) {
	fs.VisitAll(func(f *flag.Flag) {
		if env := envNameOf(f); !strings.Contains(f.Usage, env) {
			f.Usage += " [env " + env + "]"
		}
	})
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := envNameOf(f)
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		if setErr := fs.Set(f.Name, v); setErr != nil {
			err = usageError("%s=%q: invalid value for --%s: %v", name, v, f.Name, setErr)
		}
	})
	return given, err
}

// osLookupEnv is os.LookupEnv, as a value for parseFlagsEnv.
var osLookupEnv = func(k string) (string, bool) { return os.LookupEnv(k) }
