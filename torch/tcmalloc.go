//go:build tcmalloc

package torch

// With the tcmalloc tag (set by tools/libtorch-env.sh when it finds
// libtcmalloc_minimal, fetched into third_party/tcmalloc or installed), the
// binding links tcmalloc. It comes before libc among the binary's libraries,
// so it is the process's malloc, libtorch's included: glibc malloc churns on
// a training step's large activations. Only binaries that use libtorch get it.

/*
#cgo LDFLAGS: -L${SRCDIR}/../third_party/tcmalloc/lib -Wl,-rpath,${SRCDIR}/../third_party/tcmalloc/lib -Wl,--no-as-needed -l:libtcmalloc_minimal.so.4 -Wl,--as-needed
*/
import "C"
