package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/embtune/embtune/torch"
)

// versionInfo is what `embtune version` prints: the module version and VCS
// revision the Go toolchain stamped into the binary, and the libtorch it
// runs on.
type versionInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	BuildTime string `json:"build_time,omitempty"`
	Go        string `json:"go"`
	Libtorch  string `json:"libtorch"`
	CUDABuild bool   `json:"cuda_build"`
}

func buildVersionInfo() versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version(), CUDABuild: torch.CUDABuild}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			case "vcs.time":
				v.BuildTime = s.Value
			}
		}
	}
	if lt, err := torch.Version(); err == nil {
		v.Libtorch = lt
	} else {
		v.Libtorch = "unknown: " + err.Error()
	}
	return v
}

// runVersion prints one line, "embtune VERSION (REVISION) libtorch X", or
// with --json the whole versionInfo.
func runVersion(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("version")
	asJSON := fs.Bool("json", false, "print the version as JSON")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	v := buildVersionInfo()
	if *asJSON {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	rev := v.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if v.Modified {
		rev += "+modified"
	}
	if rev != "" {
		rev = " (" + rev + ")"
	}
	cuda := ""
	if v.CUDABuild {
		cuda = ", CUDA build"
	}
	fmt.Fprintf(stdout, "embtune %s%s, libtorch %s%s, %s\n", v.Version, rev, v.Libtorch, cuda, v.Go)
	return nil
}
