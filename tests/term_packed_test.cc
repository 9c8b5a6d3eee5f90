// PackedTerm keeps a boxed Term in one word and shares its node exactly as a
// Term copy would.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "term/term.h"

namespace presence {
namespace {

Term meta(int n) {
  return Term::map({{Term::atom("phx_ref"), Term::binary(std::string(16, 'r'))},
                    {Term::atom("n"), Term::integer(n)}});
}

TEST(PackedTerm, IsOneWord) {
  EXPECT_EQ(sizeof(PackedTerm), sizeof(void*));
}

TEST(PackedTerm, FitsTermsWhoseValueIsTheirNode) {
  EXPECT_TRUE(PackedTerm::fits(meta(1)));
  EXPECT_TRUE(PackedTerm::fits(Term::map({})));
  EXPECT_TRUE(PackedTerm::fits(Term::tuple({Term::integer(1)})));
  EXPECT_TRUE(PackedTerm::fits(Term::list({Term::integer(1)})));
  EXPECT_TRUE(PackedTerm::fits(Term::binary(std::string(40, 'b'))));
}

TEST(PackedTerm, RefusesValuesHeldInsideTheTerm) {
  EXPECT_FALSE(PackedTerm::fits(Term::integer(7)));
  EXPECT_FALSE(PackedTerm::fits(Term::atom("ok")));
  EXPECT_FALSE(PackedTerm::fits(Term()));
  EXPECT_FALSE(PackedTerm::fits(Term::binary("short")));
  EXPECT_FALSE(PackedTerm::fits(Term::floating(1.5)));
  // A bitstring's unused bits live beside the node pointer.
  EXPECT_FALSE(PackedTerm::fits(Term::bitstring(std::string(40, 'b'), 3)));
}

TEST(PackedTerm, GivesBackAnEqualTermOfTheSameType) {
  const Term original = meta(2);
  const PackedTerm packed(original);
  const Term back = packed.get();
  EXPECT_EQ(back.type(), TermType::kMap);
  EXPECT_EQ(back, original);
  EXPECT_EQ(back.hash(), original.hash());
  const Term tuple = Term::tuple({Term::atom("a"), Term::integer(3)});
  EXPECT_EQ(PackedTerm(tuple).get(), tuple);
}

TEST(PackedTerm, KeepsTheNodeAliveAfterTheOriginalIsGone) {
  PackedTerm packed(meta(3));
  PackedTerm copy = packed;
  packed.reset();
  EXPECT_TRUE(packed.empty());
  ASSERT_FALSE(copy.empty());
  EXPECT_EQ(copy.get(), meta(3));
}

TEST(PackedTerm, MovesLeaveTheSourceEmptyAndAssignmentReplaces) {
  PackedTerm a(meta(4));
  PackedTerm b(std::move(a));
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b.get(), meta(4));
  PackedTerm c(meta(5));
  c = b;
  EXPECT_EQ(c.get(), meta(4));
  c = PackedTerm(meta(6));
  EXPECT_EQ(c.get(), meta(6));
  EXPECT_EQ(b.get(), meta(4));
}

}  // namespace
}  // namespace presence
