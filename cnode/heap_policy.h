// How the process's heap treats freed memory.
#pragma once

namespace presence {

// Asks glibc's malloc to keep memory the process frees for its next
// allocations rather than returning it to the kernel at once: freed space at
// the top of the heap is kept up to 256 MiB, and only blocks of 32 MiB or
// more get a mapping of their own. A replica frees and allocates in bulk (a
// whole-state merge builds 100,000 records, a replica's removal frees them);
// with glibc's defaults every such cycle hands the pages back and then
// takes a page fault on each again, which nearly doubles the time of a
// whole-state merge (bench/crdt_bench). The BEAM's allocators keep their
// carriers in the same way. Call once, early in main; presence_node does.
// No effect with another malloc.
void retain_freed_memory();

}  // namespace presence
