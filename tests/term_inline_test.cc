// Values stored inside the 16-byte Term (short binaries, pids) behave exactly
// like the ones stored in shared nodes: equality, order, hashing, copies and
// the external format do not depend on where the bytes live.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "term/codec.h"
#include "term/term.h"

namespace presence {
namespace {

std::string bytes(std::size_t size, char fill = 'x') {
  return std::string(size, fill);
}

TEST(InlineTerms, BinariesAroundTheInlineSizeCompareAndHashByValue) {
  for (std::size_t size : {0u, 1u, 13u, 14u, 15u, 16u, 40u}) {
    const Term a = Term::binary(bytes(size));
    const Term b = Term::binary(bytes(size));
    EXPECT_EQ(a, b) << size;
    EXPECT_EQ(a.hash(), b.hash()) << size;
    EXPECT_EQ(a.as_binary(), bytes(size));
    EXPECT_LT(a, Term::binary(bytes(size) + "y")) << size;  // a prefix sorts first
    if (size > 0) {
      EXPECT_NE(a, Term::binary(bytes(size, 'z'))) << size;
    }
  }
  // The last byte counts, inline or not.
  EXPECT_LT(Term::binary(bytes(13) + "a"), Term::binary(bytes(13) + "b"));
  EXPECT_LT(Term::binary(bytes(14) + "a"), Term::binary(bytes(14) + "b"));
  // Bytes >= 0x80 sort after ASCII, as unsigned bytes.
  EXPECT_LT(Term::binary("a"), Term::binary("\xff"));
}

TEST(InlineTerms, CopiesKeepTheirBytesAndMovesLeaveTheEmptyList) {
  Term original = Term::binary("short");
  Term copy = original;
  std::vector<Term> many;
  for (int i = 0; i < 100; ++i) many.push_back(copy);  // moves inside the vector as it grows
  for (const Term& t : many) EXPECT_EQ(t.as_binary(), "short");
  Term moved = std::move(original);
  EXPECT_TRUE(original.is_nil());  // NOLINT(bugprone-use-after-move): the moved-from state
  EXPECT_EQ(moved.as_binary(), "short");
  moved = Term::binary(bytes(30));
  EXPECT_EQ(moved.as_binary(), bytes(30));
  moved = copy;
  EXPECT_EQ(moved.as_binary(), "short");
}

TEST(InlineTerms, PidsKeepEveryFieldAndOrderAsTheBeam) {
  const PidValue value{Atom("node@host"), 0xFFFFFFFF, 0x12345678, 0xCAFEBABE};
  const Term pid = Term::pid(value);
  EXPECT_EQ(pid.as_pid(), value);
  EXPECT_EQ(pid, Term::pid(value));
  EXPECT_EQ(pid.hash(), Term::pid(value).hash());
  // Serial first, then number, then node, then creation.
  const Term low_serial = Term::pid({Atom("z@h"), 9, 1, 9});
  const Term high_serial = Term::pid({Atom("a@h"), 1, 2, 1});
  EXPECT_LT(low_serial, high_serial);
  EXPECT_LT(Term::pid({Atom("a@h"), 1, 0, 5}), Term::pid({Atom("b@h"), 1, 0, 1}));
  EXPECT_LT(Term::pid({Atom("a@h"), 1, 0, 1}), Term::pid({Atom("a@h"), 1, 0, 2}));
  EXPECT_NE(Term::pid({Atom("a@h"), 1, 0, 1}), Term::pid({Atom("b@h"), 1, 0, 1}));
}

TEST(InlineTerms, ShortAndLongValuesRoundTripThroughTheExternalFormat) {
  const Term term = Term::tuple({
      Term::binary(""),
      Term::binary(bytes(14)),
      Term::binary(bytes(15)),
      Term::bitstring("\xff\x80", 1),
      Term::pid({Atom("n@h"), 7, 8, 9}),
      Term::map({{Term::binary("k"), Term::binary(bytes(20))}}),
  });
  DecodeResult decoded = decode_whole(encode(term));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.term(), term);
  EXPECT_EQ(decoded.term().hash(), term.hash());
}

TEST(InlineTerms, FloatsAreEqualByValueNotByBits) {
  EXPECT_EQ(Term::floating(0.0), Term::floating(-0.0));
  EXPECT_EQ(Term::floating(0.0).hash(), Term::floating(-0.0).hash());
  EXPECT_NE(Term::floating(1.0), Term::integer(1));
}

}  // namespace
}  // namespace presence
