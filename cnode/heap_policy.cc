#include "cnode/heap_policy.h"

#include <cstdlib>  // defines __GLIBC__ when the C library is glibc's

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace presence {

void retain_freed_memory() {
#if defined(__GLIBC__)
  constexpr int kTrimThreshold = 256 << 20;
  constexpr int kMmapThreshold = 32 << 20;  // glibc's largest accepted value
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
#endif
}

}  // namespace presence
