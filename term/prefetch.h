// Cache hints: ask the processor to load the line holding an address ahead
// of its use, so that loops over scattered data overlap their cache misses.
// They never fault and never change what a program computes.
//
// GCC 12 drops __builtin_prefetch of addresses it loads through a chain of
// pointers (a record in a chunk, a term's node), which is where the hints
// matter; an asm statement is kept as written.
#pragma once

namespace presence {

// For data about to be read.
inline void prefetch_read(const void* address) {
#if defined(__x86_64__) && defined(__GNUC__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(address)));
#else
  __builtin_prefetch(address, /*rw=*/0);
#endif
}

// For data about to be written, such as a reference count: the line comes
// in owned, so the write does not have to ask for it again. (Processors
// without PREFETCHW execute it as a no-op.)
inline void prefetch_write(const void* address) {
#if defined(__x86_64__) && defined(__GNUC__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(address)));
#else
  __builtin_prefetch(address, /*rw=*/1);
#endif
}

}  // namespace presence
