// erlang:phash2/1,2 over Terms, bit for bit as the BEAM (OTP 25) computes it.
//
// Phoenix.Tracker picks a topic's shard with :erlang.phash2(topic, pool_size)
// and Phoenix.PubSub picks a broadcast group with :erlang.phash2(pid, size),
// so a C++ replica must reach the same numbers for the same terms.
//
// The hash is the emulator's portable one: it depends only on the value, not
// on the machine or the node that computes it. In particular:
//   - integers hash by value, whatever their encoding (small or big);
//   - 0.0 and -0.0 hash alike (as on OTP 25);
//   - atoms hash by their UTF-8 text;
//   - maps hash independently of the order of their entries;
//   - a pid hashes by its id alone, a port by its id, a reference by its
//     first id word: node name, creation and serial do not take part, so
//     local and remote pids with the same id collide by design.
#pragma once

#include <cstdint>

#include "term/term.h"

namespace presence {

// erlang:phash2(Term): a hash in [0, 2^27).
std::uint32_t phash2(const Term& term);

// erlang:phash2(Term, Range): a hash in [0, range). range must be 1..2^32;
// as on the BEAM, which keeps the range in 32 bits, 0 stands for 2^32 and
// gives the full 32-bit hash.
//
// Funs are hashed from their stored encoding (module, index, unique number
// and captured values, as the BEAM does). A fun whose stored bytes cannot be
// read, which decode() never produces, is hashed as the binary of those
// bytes.
//
// Pure function of its argument; safe to call from any thread. Recursion
// depth grows with the nesting depth of the term (bounded by
// kMaxDecodeDepth for decoded terms).
std::uint32_t phash2(const Term& term, std::uint32_t range);

}  // namespace presence
