//go:build tcmalloc

package torch

/*
#include <stddef.h>
#include <stdlib.h>
// gperftools' C interface (malloc_extension_c.h), exported by tcmalloc_minimal.
int MallocExtension_GetNumericProperty(const char* property, size_t* value);
void MallocExtension_ReleaseFreeMemory(void);
*/
import "C"

import "unsafe"

func mallocProperty(name string) uint64 {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var v C.size_t
	if C.MallocExtension_GetNumericProperty(cs, &v) == 0 {
		return 0
	}
	return uint64(v)
}

// ReadMallocStats reads tcmalloc's own accounting.
func ReadMallocStats() (MallocStats, bool) {
	return MallocStats{
		Allocated:    mallocProperty("generic.current_allocated_bytes"),
		HeapSize:     mallocProperty("generic.heap_size"),
		PageHeapFree: mallocProperty("tcmalloc.pageheap_free_bytes"),
		Unmapped:     mallocProperty("tcmalloc.pageheap_unmapped_bytes"),
	}, true
}

// ReleaseFreeMemory returns tcmalloc's free pages to the operating system.
func ReleaseFreeMemory() { C.MallocExtension_ReleaseFreeMemory() }
