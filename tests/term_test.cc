#include "term/term.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "term/codec.h"
#include "term/phash2.h"

namespace presence {

// Lets GoogleTest show terms as Erlang would.
void PrintTo(const Term& term, std::ostream* os) {
  *os << term.to_string();
}

namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

// term_to_binary(fun(X) -> X + Y end) with Y = <<"free">>, made by module
// funord2 on a nonode@nohost node (OTP 25).
const std::string kClosureWithFreeVariable =
    bytes({131, 112, 0,   0,   0,   84,  1,   200, 212, 94,  114, 29,  155, 133, 44, 224, 254, 240,
           194, 195, 175, 24,  168, 0,   0,   0,   0,   0,   0,   0,   1,   100, 0,  7,   102, 117,
           110, 111, 114, 100, 50,  97,  0,   98,  6,   70,  162, 243, 88,  100, 0,  13,  110, 111,
           110, 111, 100, 101, 64,  110, 111, 104, 111, 115, 116, 0,   0,   0,   9,  0,   0,   0,
           0,   0,   0,   0,   0,   109, 0,   0,   0,   4,   102, 114, 101, 101});

Term int_(std::int64_t v) {
  return Term::integer(v);
}
Term flt(double v) {
  return Term::floating(v);
}
Term atm(std::string_view text) {
  return Term::atom(text);
}
Term bin(std::string_view b) {
  return Term::binary(b);
}

Term big(bool negative, std::vector<std::uint8_t> magnitude) {
  return Term::big_integer(BigIntValue{negative, std::move(magnitude)});
}

Term pid(std::string_view node, std::uint32_t id, std::uint32_t serial, std::uint32_t creation) {
  return Term::pid(PidValue{Atom(node), id, serial, creation});
}

Term ref(std::string_view node, std::uint32_t creation, std::vector<std::uint32_t> ids) {
  return Term::reference(RefValue{Atom(node), creation, std::move(ids)});
}

Term port(std::string_view node, std::uint64_t id, std::uint32_t creation) {
  return Term::port(PortValue{Atom(node), id, creation});
}

Term decoded(const std::string& encoding) {
  DecodeResult result = decode_whole(encoding);
  EXPECT_TRUE(result.ok()) << result.error().message();
  return result.ok() ? result.term() : Term();
}

DecodeErrc error_of(const std::string& encoding) {
  DecodeResult result = decode_whole(encoding);
  EXPECT_FALSE(result.ok()) << "decoded to " << result.term().to_string();
  return result.ok() ? DecodeErrc::kTrailingBytes : result.error().code;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::filesystem::path> golden_files() {
  std::vector<std::filesystem::path> files;
  std::filesystem::path dir = std::filesystem::path(PRESENCE_GOLDEN_DIR) / "phoenix_pubsub-2.1.3";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".etf") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// ---------------------------------------------------------------------------
// Construction and accessors

TEST(Term, IsSixteenBytes) {
  EXPECT_EQ(sizeof(Term), 16u);
}

TEST(Term, DefaultIsTheEmptyList) {
  Term nil;
  EXPECT_TRUE(nil.is_nil());
  EXPECT_TRUE(nil.is_list());
  EXPECT_TRUE(nil.is_proper_list());
  EXPECT_EQ(nil.size(), 0u);
  EXPECT_TRUE(nil.tail().is_nil());
}

TEST(Term, AccessorsReturnWhatWasBuilt) {
  EXPECT_EQ(int_(-42).as_integer(), -42);
  EXPECT_EQ(flt(2.5).as_float(), 2.5);
  EXPECT_EQ(atm("hello").as_atom().text(), "hello");
  EXPECT_TRUE(atm("hello").is_atom("hello"));
  EXPECT_FALSE(atm("hello").is_atom("hell"));
  EXPECT_EQ(bin("abc").as_binary(), "abc");
  EXPECT_EQ(bin("abc").bits_in_last_byte(), 8u);
  EXPECT_TRUE(Term::boolean(true).is_atom("true"));
  EXPECT_EQ(pid("a@h", 1, 2, 3).as_pid(), (PidValue{Atom("a@h"), 1, 2, 3}));
  EXPECT_EQ(port("a@h", 7, 3).as_port().id, 7u);
  EXPECT_EQ(ref("a@h", 3, {1, 2, 3}).as_reference().ids, (std::vector<std::uint32_t>{1, 2, 3}));
  Term tuple = Term::tuple({atm("a"), int_(1)});
  EXPECT_TRUE(tuple.is_tuple(2));
  EXPECT_FALSE(tuple.is_tuple(3));
  EXPECT_EQ(tuple[1], int_(1));
}

TEST(Term, AtomsWithEqualTextAreOneInternedAtom) {
  Atom a("same_text");
  Atom b(std::string("same_") + "text");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.text().data(), b.text().data());
  EXPECT_NE(a, Atom("other_text"));
  EXPECT_EQ(Atom().text(), "");
}

TEST(Term, AtomsInternedConcurrentlyAgree) {
  std::vector<std::thread> threads;
  std::vector<std::vector<Atom>> seen(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &seen] {
      for (int i = 0; i < 2000; ++i) seen[t].push_back(Atom("concurrent_" + std::to_string(i)));
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < 2000; ++i) {
    for (int t = 1; t < 4; ++t) ASSERT_EQ(seen[0][i], seen[t][i]);
  }
}

TEST(Term, BigIntegerThatFitsInt64BecomesInteger) {
  Term fits = big(true, {0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0});  // -2^63, with zero padding
  ASSERT_TRUE(fits.is_integer());
  EXPECT_EQ(fits.as_integer(), std::numeric_limits<std::int64_t>::min());
  Term beyond = big(false, {0, 0, 0, 0, 0, 0, 0, 0x80});  // 2^63
  EXPECT_EQ(beyond.type(), TermType::kBigInteger);
  EXPECT_EQ(big(false, {}).as_integer(), 0);
}

TEST(Term, ListWithListTailIsOneFlatList) {
  Term spliced = Term::list({int_(1)}, Term::list({int_(2), int_(3)}, atm("t")));
  Term flat = Term::list({int_(1), int_(2), int_(3)}, atm("t"));
  EXPECT_EQ(spliced, flat);
  EXPECT_EQ(spliced.size(), 3u);
  EXPECT_TRUE(spliced.tail().is_atom("t"));
  EXPECT_FALSE(spliced.is_proper_list());
}

TEST(Term, ListOfNoElementsIsItsTail) {
  EXPECT_TRUE(Term::list(std::vector<Term>{}, atm("x")).is_atom("x"));
  EXPECT_TRUE(Term::list(std::vector<Term>{}).is_nil());
}

TEST(Term, StringIsAListOfSmallIntegers) {
  Term s = Term::string("hi\xff");
  EXPECT_EQ(s, Term::list({int_('h'), int_('i'), int_(255)}));
  std::string text;
  ASSERT_TRUE(s.as_string(&text));
  EXPECT_EQ(text, "hi\xff");
  EXPECT_FALSE(Term::list({int_(256)}).as_string(&text));
  EXPECT_FALSE(Term::list({int_(1)}, int_(2)).as_string(&text));
  EXPECT_FALSE(atm("a").as_string(&text));
  ASSERT_TRUE(Term().as_string(&text));
  EXPECT_EQ(text, "");
}

TEST(Term, BitStringClearsBitsBeyondItsLength) {
  Term bits = Term::bitstring("\xff\xff", 3);
  EXPECT_EQ(bits.type(), TermType::kBitString);
  EXPECT_EQ(bits.as_binary(), "\xff\xe0");
  EXPECT_EQ(bits.bits_in_last_byte(), 3u);
  EXPECT_EQ(bits, Term::bitstring("\xff\xe7", 3));
}

TEST(Term, BitStringWithWholeLastByteIsABinary) {
  EXPECT_EQ(Term::bitstring("ab", 8).type(), TermType::kBinary);
  EXPECT_EQ(Term::bitstring("", 3).type(), TermType::kBinary);
}

TEST(Term, MapKeepsTheLastOfDuplicateKeys) {
  Term map = Term::map({{atm("a"), int_(1)}, {atm("b"), int_(2)}, {atm("a"), int_(3)}});
  ASSERT_EQ(map.map_entries().size(), 2u);
  ASSERT_NE(map.find("a"), nullptr);
  EXPECT_EQ(*map.find("a"), int_(3));
}

TEST(Term, MapFindsEveryKeyAndOnlyThose) {
  std::vector<std::pair<Term, Term>> entries;
  for (int i = 0; i < 200; ++i) {
    entries.emplace_back(i % 2 ? int_(i) : bin(std::to_string(i)), int_(i * 10));
  }
  Term map = Term::map(entries);
  for (int i = 0; i < 200; ++i) {
    const Term* value = map.find(i % 2 ? int_(i) : bin(std::to_string(i)));
    ASSERT_NE(value, nullptr) << i;
    EXPECT_EQ(*value, int_(i * 10));
  }
  EXPECT_EQ(map.find(int_(2)), nullptr);
  EXPECT_EQ(map.find(flt(1.0)), nullptr);  // 1 is a key, 1.0 is not
  EXPECT_EQ(map.find("absent"), nullptr);
}

TEST(Term, MapPutReturnsANewMapAndLeavesTheOriginal) {
  Term map = Term::map({{atm("a"), int_(1)}});
  Term replaced = map.map_put(atm("a"), int_(2));
  Term extended = map.map_put(atm("b"), int_(3));
  EXPECT_EQ(*map.find("a"), int_(1));
  EXPECT_EQ(*replaced.find("a"), int_(2));
  EXPECT_EQ(replaced.map_entries().size(), 1u);
  EXPECT_EQ(extended, Term::map({{atm("b"), int_(3)}, {atm("a"), int_(1)}}));
}

TEST(Term, MapEntriesAreInKeyOrderWithIntegersBeforeFloats) {
  Term map = Term::map({{flt(0.5), atm("d")},
                        {flt(1.0), atm("a")},
                        {int_(2), atm("c")},
                        {int_(1), atm("b")},
                        {atm("k"), atm("e")}});
  std::vector<Term> keys;
  for (const auto& entry : map.map_entries()) keys.push_back(entry.first);
  EXPECT_EQ(keys, (std::vector<Term>{int_(1), int_(2), flt(0.5), flt(1.0), atm("k")}));
}

// Maps of up to 16 atom keys keep their keys in a list shared by all maps of
// the same keys; past 16 keys, or with any other key, a map keeps its own.
// Both must read, compare, hash and encode alike.
TEST(Term, MapsOfAtomKeysBehaveTheSameAtEverySize) {
  std::mt19937 random(7);
  for (int size = 1; size <= 20; ++size) {
    std::vector<std::pair<Term, Term>> entries;
    for (int i = 0; i < size; ++i) {
      entries.emplace_back(atm("k" + std::to_string(100 + i)), bin("value " + std::to_string(i)));
    }
    std::vector<std::pair<Term, Term>> shuffled = entries;
    std::shuffle(shuffled.begin(), shuffled.end(), random);
    const Term map = Term::map(shuffled);
    const Term same = Term::map(entries);

    ASSERT_EQ(map.map_entries().size(), static_cast<std::size_t>(size));
    for (int i = 0; i < size; ++i) {
      EXPECT_EQ(map.map_entries()[i].first, entries[i].first) << size;
      EXPECT_EQ(map.map_entries()[i].second, entries[i].second) << size;
      ASSERT_NE(map.find(entries[i].first), nullptr) << size;
      EXPECT_EQ(*map.find(entries[i].first), entries[i].second) << size;
    }
    EXPECT_EQ(map.find("k099"), nullptr);
    EXPECT_EQ(map, same);
    EXPECT_EQ(map.hash(), same.hash());
    EXPECT_EQ(phash2(map), phash2(same));
    EXPECT_EQ(decoded(encode(map)), map) << size;
    EXPECT_EQ(encode(map), encode(same));

    const Term bigger = map.map_put(atm("k999"), int_(1));
    EXPECT_EQ(bigger.map_entries().size(), static_cast<std::size_t>(size + 1));
    EXPECT_LT(map, bigger);  // maps order by size first
    const Term changed = map.map_put(entries.back().first, bin("other"));
    EXPECT_EQ(changed.map_entries().size(), static_cast<std::size_t>(size));
    EXPECT_NE(changed, map);
    EXPECT_EQ(*map.find(entries.back().first), entries.back().second);  // map is unchanged
  }
}

TEST(Term, MapsOfAtomKeysCompareWithMapsOfOtherKeysInTermOrder) {
  const Term atoms = Term::map({{atm("a"), int_(1)}, {atm("b"), int_(2)}});
  const Term mixed = Term::map({{int_(1), int_(1)}, {atm("b"), int_(2)}});
  // Same size: the lowest differing key decides, and a number is below an atom.
  EXPECT_LT(mixed, atoms);
  EXPECT_GT(atoms, mixed);
  EXPECT_NE(atoms.hash(), mixed.hash());
  const Term grown = mixed.map_put(int_(1), int_(5));
  EXPECT_EQ(*grown.find(int_(1)), int_(5));
}

TEST(Term, MapsOfManyKeySetsAllWork) {
  // More distinct key sets than are ever shared: later maps keep their keys.
  std::vector<Term> maps;
  for (int i = 0; i < 5000; ++i) {
    const std::string n = std::to_string(i);
    maps.push_back(Term::map({{atm("set" + n), int_(i)}, {atm("phx_ref"), bin(n)}}));
  }
  for (int i = 0; i < 5000; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_NE(maps[i].find("set" + n), nullptr) << i;
    EXPECT_EQ(*maps[i].find("set" + n), int_(i));
    EXPECT_EQ(*maps[i].find("phx_ref"), bin(n));
    EXPECT_EQ(decoded(encode(maps[i])), maps[i]);
  }
  EXPECT_NE(maps[0], maps[4999]);
}

TEST(Term, MapsOfTheSameKeysBuiltOnManyThreadsAgree) {
  constexpr int kThreads = 4;
  constexpr int kSets = 300;
  std::vector<std::vector<Term>> built(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &built] {
      for (int i = 0; i < kSets; ++i) {
        // Each thread goes through the key sets in its own order.
        const int set = (i * (2 * t + 1)) % kSets;
        const std::string n = std::to_string(set);
        built[t].push_back(Term::map({{atm("thread_key" + n), int_(set)}, {atm("name"), bin(n)}}));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kSets; ++i) {
      const int set = (i * (2 * t + 1)) % kSets;
      const std::string n = std::to_string(set);
      EXPECT_EQ(built[t][i],
                Term::map({{atm("name"), bin(n)}, {atm("thread_key" + n), int_(set)}}));
      EXPECT_EQ(*built[t][i].find("thread_key" + n), int_(set));
    }
  }
}

TEST(Term, CopyTwiceGivesTwoCopiesThatOutliveTheOriginal) {
  std::pair<Term, Term> boxed;
  std::pair<Term, Term> short_binary;
  {
    const Term map = Term::map({{atm("phx_ref"), bin("a binary longer than fourteen bytes")}});
    const Term inline_binary = bin("short");
    boxed = map.copy_twice();
    short_binary = inline_binary.copy_twice();
    EXPECT_EQ(boxed.first, map);
    EXPECT_EQ(boxed.second, map);
  }
  EXPECT_EQ(*boxed.first.find("phx_ref"), bin("a binary longer than fourteen bytes"));
  boxed.first = Term();
  EXPECT_EQ(*boxed.second.find("phx_ref"), bin("a binary longer than fourteen bytes"));
  EXPECT_EQ(short_binary.first, bin("short"));
  EXPECT_EQ(short_binary.second, bin("short"));
}

TEST(Term, TuplesAndMapsTakenFromSpansMatchTheOtherConstructors) {
  std::vector<Term> elements = {bin("a binary longer than fourteen bytes"), int_(1), atm("x")};
  std::vector<Term> copy = elements;
  EXPECT_EQ(Term::tuple(std::span<Term>(copy)), Term::tuple(elements));

  std::vector<std::pair<Term, Term>> entries = {
      {atm("b"), int_(2)}, {atm("a"), int_(1)}, {atm("b"), int_(3)}};
  std::vector<std::pair<Term, Term>> moved = entries;
  const Term map = Term::map(std::span<std::pair<Term, Term>>(moved));
  EXPECT_EQ(map, Term::map(entries));
  EXPECT_EQ(map.map_entries().size(), 2u);
  EXPECT_EQ(*map.find("b"), int_(3));  // the last duplicate wins
}

TEST(Term, TuplesOfEveryArityRoundTripThroughTheCodec) {
  for (int arity = 0; arity <= 12; ++arity) {
    std::vector<Term> elements;
    for (int i = 0; i < arity; ++i) {
      elements.push_back(i % 2 ? int_(i) : bin("element number " + std::to_string(i)));
    }
    const Term tuple = Term::tuple(elements);
    const Term back = decoded(encode(tuple));
    EXPECT_EQ(back, tuple) << arity;
    EXPECT_EQ(back.size(), static_cast<std::size_t>(arity));
  }
}

TEST(Term, CopiesSharedAcrossThreadsStayIntact) {
  Term shared = Term::map({{atm("list"), Term::list({bin("x"), int_(1)})}, {int_(1), bin("y")}});
  std::string expected = shared.to_string();
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        Term copy = shared;
        Term moved = std::move(copy);
        if (moved.map_entries().size() != 2) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(shared.to_string(), expected);
}

TEST(Term, AssignmentReleasesThePreviousValue) {
  Term a = Term::tuple({bin("one")});
  Term b = Term::tuple({bin("two")});
  a = b;
  EXPECT_EQ(a, b);
  const Term& alias = a;
  a = alias;  // self-assignment keeps the value
  EXPECT_EQ(a, b);
  b = Term();
  EXPECT_EQ(a[0], bin("two"));
}

// ---------------------------------------------------------------------------
// Term order and equality

// lists:sort/1 of 73 distinct terms of every kind, as term_to_binary gave it
// (OTP 25): numbers, atoms, refs, funs, ports, pids, tuples, maps, lists and
// bitstrings, with the orderings within each kind that the BEAM uses.
const std::string kErlangSorted = bytes(
    {131, 108, 0,   0,   0,   73,  70,  198, 41,  62,  89,  57,  160, 140, 234, 110, 9,   1,   0,
     0,   0,   0,   0,   0,   0,   0,   64,  110, 8,   1,   0,   0,   0,   0,   0,   0,   0,   128,
     98,  255, 255, 255, 253, 70,  192, 4,   0,   0,   0,   0,   0,   0,   97,  0,   70,  63,  224,
     0,   0,   0,   0,   0,   0,   97,  1,   70,  63,  248, 0,   0,   0,   0,   0,   0,   97,  255,
     110, 7,   0,   1,   0,   0,   0,   0,   0,   32,  70,  67,  225, 88,  228, 96,  145, 61,  0,
     110, 9,   0,   0,   0,   0,   0,   0,   0,   0,   0,   1,   70,  70,  41,  62,  89,  57,  160,
     140, 234, 110, 26,  0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
     0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   1,   100, 0,   0,   100, 0,   1,   66,
     100, 0,   1,   90,  100, 0,   1,   97,  100, 0,   2,   97,  97,  100, 0,   2,   97,  98,  100,
     0,   1,   98,  100, 0,   1,   228, 119, 2,   206, 177, 90,  0,   1,   100, 0,   3,   97,  64,
     104, 0,   0,   0,   1,   0,   0,   0,   5,   90,  0,   3,   100, 0,   3,   97,  64,  104, 0,
     0,   0,   1,   0,   0,   0,   1,   0,   0,   0,   2,   0,   0,   0,   3,   90,  0,   1,   100,
     0,   3,   97,  64,  104, 0,   0,   0,   2,   0,   0,   0,   0,   90,  0,   1,   100, 0,   3,
     98,  64,  104, 0,   0,   0,   0,   0,   0,   0,   1,   113, 100, 0,   6,   101, 114, 108, 97,
     110, 103, 100, 0,   3,   97,  98,  115, 97,  1,   113, 100, 0,   5,   108, 105, 115, 116, 115,
     100, 0,   3,   109, 97,  112, 97,  2,   89,  100, 0,   3,   97,  64,  104, 0,   0,   0,   7,
     0,   0,   0,   1,   120, 100, 0,   3,   97,  64,  104, 0,   0,   1,   0,   0,   0,   0,   0,
     0,   0,   0,   1,   89,  100, 0,   3,   97,  64,  104, 0,   0,   0,   1,   0,   0,   0,   2,
     89,  100, 0,   3,   98,  64,  104, 0,   0,   0,   1,   0,   0,   0,   1,   88,  100, 0,   3,
     97,  64,  104, 0,   0,   0,   1,   0,   0,   0,   0,   0,   0,   0,   1,   88,  100, 0,   3,
     97,  64,  104, 0,   0,   0,   1,   0,   0,   0,   0,   0,   0,   0,   2,   88,  100, 0,   3,
     98,  64,  104, 0,   0,   0,   1,   0,   0,   0,   0,   0,   0,   0,   1,   88,  100, 0,   3,
     97,  64,  104, 0,   0,   0,   2,   0,   0,   0,   0,   0,   0,   0,   1,   88,  100, 0,   3,
     97,  64,  104, 0,   0,   0,   1,   0,   0,   0,   1,   0,   0,   0,   1,   104, 0,   104, 1,
     100, 0,   1,   97,  104, 1,   100, 0,   1,   98,  104, 1,   104, 0,   104, 2,   100, 0,   1,
     97,  100, 0,   1,   97,  104, 3,   97,  1,   97,  2,   97,  3,   116, 0,   0,   0,   0,   116,
     0,   0,   0,   1,   97,  1,   100, 0,   1,   122, 116, 0,   0,   0,   1,   70,  64,  0,   0,
     0,   0,   0,   0,   0,   100, 0,   1,   97,  116, 0,   0,   0,   1,   100, 0,   1,   97,  97,
     1,   116, 0,   0,   0,   1,   100, 0,   1,   97,  97,  2,   116, 0,   0,   0,   1,   100, 0,
     1,   97,  116, 0,   0,   0,   0,   116, 0,   0,   0,   1,   100, 0,   1,   98,  97,  0,   116,
     0,   0,   0,   2,   97,  1,   100, 0,   1,   97,  97,  2,   100, 0,   1,   98,  106, 108, 0,
     0,   0,   1,   97,  1,   70,  64,  0,   0,   0,   0,   0,   0,   0,   108, 0,   0,   0,   1,
     97,  1,   109, 0,   0,   0,   0,   108, 0,   0,   0,   1,   97,  97,  97,  98,  107, 0,   3,
     97,  98,  99,  107, 0,   3,   97,  98,  100, 108, 0,   0,   0,   1,   100, 0,   1,   97,  100,
     0,   1,   98,  108, 0,   0,   0,   1,   100, 0,   1,   97,  106, 108, 0,   0,   0,   2,   100,
     0,   1,   97,  100, 0,   1,   98,  106, 108, 0,   0,   0,   1,   106, 106, 109, 0,   0,   0,
     0,   77,  0,   0,   0,   1,   1,   0,   77,  0,   0,   0,   1,   7,   2,   109, 0,   0,   0,
     2,   97,  98,  109, 0,   0,   0,   3,   97,  98,  99,  109, 0,   0,   0,   3,   97,  98,  100,
     109, 0,   0,   0,   1,   127, 77,  0,   0,   0,   1,   1,   128, 109, 0,   0,   0,   1,   128,
     77,  0,   0,   0,   2,   1,   128, 0,   106});

TEST(TermOrder, SortingReproducesErlangsOrder) {
  Term sorted = decoded(kErlangSorted);
  ASSERT_EQ(sorted.size(), 73u);
  std::vector<Term> expected(sorted.elements().begin(), sorted.elements().end());
  std::vector<Term> shuffled = expected;
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    std::vector<Term> ours = shuffled;
    std::sort(ours.begin(), ours.end());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(ours[i], expected[i])
          << i << ": " << ours[i].to_string() << " vs " << expected[i].to_string();
    }
  }
}

TEST(TermOrder, EveryTermEqualsItselfOnlyInTheSortedSample) {
  Term sorted = decoded(kErlangSorted);
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    for (std::size_t j = 0; j < sorted.size(); ++j) {
      EXPECT_EQ(sorted[i] == sorted[j], i == j) << i << " " << j;
      EXPECT_EQ(sorted[i] < sorted[j], i < j) << i << " " << j;
    }
  }
}

TEST(TermOrder, IntegerAndFloatOfEqualValueAreDifferentTermsWithIntegerFirst) {
  EXPECT_NE(int_(1), flt(1.0));
  EXPECT_LT(int_(1), flt(1.0));
  EXPECT_LT(flt(1.0), int_(2));
  EXPECT_LT(flt(0.5), int_(1));
  EXPECT_LT(int_(-1), flt(-0.5));
  EXPECT_NE(Term::tuple({int_(1)}), Term::tuple({flt(1.0)}));
}

TEST(TermOrder, NumbersCompareByValueAcrossIntegerBigAndFloat) {
  Term two_to_64 = big(false, {0, 0, 0, 0, 0, 0, 0, 0, 1});
  Term two_to_64_plus_1 = big(false, {1, 0, 0, 0, 0, 0, 0, 0, 1});
  Term minus_two_to_64 = big(true, {0, 0, 0, 0, 0, 0, 0, 0, 1});
  std::vector<Term> ascending = {minus_two_to_64,
                                 flt(-1.8e19),
                                 int_(std::numeric_limits<std::int64_t>::min()),
                                 int_(-1),
                                 int_(0),
                                 flt(0.0),
                                 flt(1e-300),
                                 int_(1),
                                 int_(std::numeric_limits<std::int64_t>::max()),
                                 flt(9223372036854775808.0),
                                 two_to_64,
                                 flt(18446744073709551616.0),
                                 two_to_64_plus_1,
                                 flt(1e300)};
  for (std::size_t i = 0; i + 1 < ascending.size(); ++i) {
    EXPECT_LT(ascending[i], ascending[i + 1]) << i;
    EXPECT_GT(ascending[i + 1], ascending[i]) << i;
  }
}

TEST(TermOrder, PositiveAndNegativeZeroFloatsAreEqual) {
  // OTP 25: 0.0 =:= -0.0.
  EXPECT_EQ(flt(0.0), flt(-0.0));
  EXPECT_EQ(flt(0.0).hash(), flt(-0.0).hash());
}

TEST(TermOrder, AtomsCompareByTextNotByCreation) {
  Atom later("zz_created_first");
  Atom earlier("aa_created_second");
  EXPECT_LT(atm("aa_created_second"), atm("zz_created_first"));
  EXPECT_LT(earlier, later);
  EXPECT_LT(atm("a"), atm("aa"));
  EXPECT_LT(atm("Z"), atm("a"));
  EXPECT_LT(atm("z"), atm("\xc3\xa4"));  // 'ä' after ASCII
}

TEST(TermOrder, KindsFollowErlangOrder) {
  std::vector<Term> ascending = {
      int_(99999),
      atm("a"),
      ref("a@h", 1, {1}),
      decoded(bytes({131, 113, 100, 0, 1, 109, 100, 0, 1, 102, 97, 1})),  // fun m:f/1
      port("a@h", 1, 1),
      pid("a@h", 1, 0, 1),
      Term::tuple({}),
      Term::map({}),
      Term(),
      Term::list({int_(1)}),
      bin("")};
  for (std::size_t i = 0; i + 1 < ascending.size(); ++i) {
    EXPECT_LT(ascending[i], ascending[i + 1]) << ascending[i].to_string();
    EXPECT_GT(ascending[i + 1], ascending[i]) << ascending[i].to_string();
  }
}

TEST(TermOrder, TuplesCompareBySizeBeforeElements) {
  EXPECT_LT(Term::tuple({atm("z")}), Term::tuple({atm("a"), atm("a")}));
  EXPECT_LT(Term::tuple({atm("a"), int_(1)}), Term::tuple({atm("a"), int_(2)}));
}

TEST(TermOrder, MapsCompareBySizeThenKeysThenValues) {
  Term small = Term::map({{atm("z"), int_(9)}});
  Term two = Term::map({{atm("a"), int_(1)}, {atm("b"), int_(1)}});
  EXPECT_LT(small, two);
  EXPECT_LT(Term::map({{atm("a"), int_(2)}}), Term::map({{atm("b"), int_(1)}}));
  EXPECT_LT(Term::map({{atm("a"), int_(1)}}), Term::map({{atm("a"), int_(2)}}));
  // Keys in map order: every integer key before any float key.
  EXPECT_LT(Term::map({{int_(2), atm("a")}}), Term::map({{flt(0.5), atm("a")}}));
  EXPECT_NE(Term::map({{atm("a"), int_(1)}}), Term::map({{atm("a"), flt(1.0)}}));
}

TEST(TermOrder, ImproperListsCompareTheirTailsByKind) {
  // lists:sort([[1|2], [1|a], [1|{}], [1], [1,2], [1|<<>>]]) keeps this order.
  std::vector<Term> ascending = {
      Term::list({int_(1)}, int_(2)),         Term::list({int_(1)}, atm("a")),
      Term::list({int_(1)}, Term::tuple({})), Term::list({int_(1)}),
      Term::list({int_(1), int_(2)}),         Term::list({int_(1)}, bin(""))};
  for (std::size_t i = 0; i + 1 < ascending.size(); ++i) {
    EXPECT_LT(ascending[i], ascending[i + 1]) << ascending[i].to_string();
  }
}

TEST(TermOrder, BitstringsCompareBitByBitWithPrefixFirst) {
  // lists:sort([<<>>, <<0:1>>, <<1:7>>, <<127>>, <<1:1>>, <<2:2>>, <<128>>, <<128,0:1>>]).
  std::vector<Term> ascending = {
      bin(""),     Term::bitstring(bytes({0}), 1),      Term::bitstring("\x02", 7),
      bin("\x7f"), Term::bitstring("\x80", 1),          Term::bitstring("\x80", 2),
      bin("\x80"), Term::bitstring(bytes({0x80, 0}), 1)};
  for (std::size_t i = 0; i + 1 < ascending.size(); ++i) {
    EXPECT_LT(ascending[i], ascending[i + 1]) << ascending[i].to_string();
  }
}

TEST(TermOrder, ReferencesIgnoreMissingHighWords) {
  EXPECT_EQ(ref("a@h", 1, {5}), ref("a@h", 1, {5, 0, 0}));
  EXPECT_EQ(ref("a@h", 1, {5}).hash(), ref("a@h", 1, {5, 0, 0}).hash());
  EXPECT_LT(ref("a@h", 1, {9, 9}), ref("a@h", 1, {0, 0, 1}));
}

TEST(TermOrder, ClosuresDifferingOnlyInCreatorAreEqual) {
  std::string fun = kClosureWithFreeVariable;
  std::string other_creator = fun;
  other_creator[other_creator.find("nonode") + 1] = 'X';  // another creator node
  EXPECT_EQ(decoded(fun), decoded(other_creator));
  EXPECT_EQ(decoded(fun).hash(), decoded(other_creator).hash());
}

// ---------------------------------------------------------------------------
// Hashing

TEST(TermHash, EqualTermsBuiltDifferentlyHashAlike) {
  Term a =
      Term::map({{atm("x"), Term::list({int_(1)}, Term::list({int_(2)}))}, {int_(1), flt(0.0)}});
  Term b = Term::map({{int_(1), flt(-0.0)}, {atm("x"), Term::list({int_(1), int_(2)})}});
  ASSERT_EQ(a, b);
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_EQ(Term::string("abc").hash(), Term::list({int_(97), int_(98), int_(99)}).hash());
  EXPECT_EQ(big(false, {0, 0, 0, 0, 0, 0, 0, 0, 1, 0}).hash(),
            big(false, {0, 0, 0, 0, 0, 0, 0, 0, 1}).hash());
}

TEST(TermHash, DecodedCopiesOfGoldenTermsHashAlike) {
  for (const auto& path : golden_files()) {
    std::string encoding = read_file(path);
    EXPECT_EQ(decoded(encoding).hash(), decoded(encoding).hash()) << path;
  }
}

TEST(TermHash, DistinctTermsMostlyHashApart) {
  std::unordered_set<std::size_t> hashes;
  std::vector<Term> terms = {int_(1),
                             flt(1.0),
                             atm("1"),
                             bin("1"),
                             Term::string("1"),
                             Term::tuple({int_(1)}),
                             Term::list({int_(1)}, int_(1)),
                             Term::map({{int_(1), int_(1)}}),
                             Term()};
  for (const Term& t : terms) hashes.insert(t.hash());
  EXPECT_EQ(hashes.size(), terms.size());
  std::unordered_set<Term, TermHash> set(terms.begin(), terms.end());
  EXPECT_EQ(set.size(), terms.size());
  EXPECT_EQ(set.count(Term::list({int_(49)})), 1u);
}

// ---------------------------------------------------------------------------
// Encoding against term_to_binary

struct ExpectedEncoding {
  const char* what;
  Term term;
  std::string bytes;
};

// Each expected encoding is term_to_binary/1 of the same value on OTP 25.
std::vector<ExpectedEncoding> expected_encodings() {
  std::string alpha200;
  for (int i = 0; i < 200; ++i) alpha200 += "\xce\xb1";
  std::string alpha200_bytes = bytes({131, 118, 1, 144}) + alpha200;
  std::vector<Term> seq;
  for (int i = 1; i <= 256; ++i) seq.push_back(int_(i));
  return {
      {"0", int_(0), bytes({131, 97, 0})},
      {"255", int_(255), bytes({131, 97, 255})},
      {"256", int_(256), bytes({131, 98, 0, 0, 1, 0})},
      {"-1", int_(-1), bytes({131, 98, 255, 255, 255, 255})},
      {"2^31-1", int_(2147483647), bytes({131, 98, 127, 255, 255, 255})},
      {"2^31", int_(2147483648), bytes({131, 110, 4, 0, 0, 0, 0, 128})},
      {"-2^31", int_(-2147483648LL), bytes({131, 98, 128, 0, 0, 0})},
      {"-2^31-1", int_(-2147483649LL), bytes({131, 110, 4, 1, 1, 0, 0, 128})},
      {"2^63-1", int_(std::numeric_limits<std::int64_t>::max()),
       bytes({131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 127})},
      {"-2^63", int_(std::numeric_limits<std::int64_t>::min()),
       bytes({131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128})},
      {"2^64", big(false, {0, 0, 0, 0, 0, 0, 0, 0, 1}),
       bytes({131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})},
      {"-2^64", big(true, {0, 0, 0, 0, 0, 0, 0, 0, 1}),
       bytes({131, 110, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1})},
      {"1.5", flt(1.5), bytes({131, 70, 63, 248, 0, 0, 0, 0, 0, 0})},
      {"0.1", flt(0.1), bytes({131, 70, 63, 185, 153, 153, 153, 153, 153, 154})},
      {"-0.0", flt(-0.0), bytes({131, 70, 128, 0, 0, 0, 0, 0, 0, 0})},
      {"abc", atm("abc"), bytes({131, 100, 0, 3, 97, 98, 99})},
      {"latin-1 atom", atm("\xc3\xa4"), bytes({131, 100, 0, 1, 228})},
      {"unicode atom", atm("\xce\xb1"), bytes({131, 119, 2, 206, 177})},
      {"long unicode atom", atm(alpha200), alpha200_bytes},
      {"empty atom", atm(""), bytes({131, 100, 0, 0})},
      {"string", Term::string("abc"), bytes({131, 107, 0, 3, 97, 98, 99})},
      {"nil", Term(), bytes({131, 106})},
      {"improper", Term::list({int_(1)}, int_(2)), bytes({131, 108, 0, 0, 0, 1, 97, 1, 97, 2})},
      {"list with 300", Term::list({int_(1), int_(2), int_(300)}),
       bytes({131, 108, 0, 0, 0, 3, 97, 1, 97, 2, 98, 0, 0, 1, 44, 106})},
      {"list with float", Term::list({flt(1.5)}),
       bytes({131, 108, 0, 0, 0, 1, 70, 63, 248, 0, 0, 0, 0, 0, 0, 106})},
      {"empty tuple", Term::tuple({}), bytes({131, 104, 0})},
      {"pair", Term::tuple({atm("a"), int_(1)}), bytes({131, 104, 2, 100, 0, 1, 97, 97, 1})},
      {"large tuple", Term::tuple(seq),
       bytes({131, 105, 0, 0, 1, 0, 97, 1}) + encode(Term::tuple(seq)).substr(8)},
      {"empty map", Term::map({}), bytes({131, 116, 0, 0, 0, 0})},
      {"mixed map", Term::map({{atm("a"), int_(1)}, {int_(1), atm("a")}, {flt(1.0), atm("b")}}),
       bytes({131, 116, 0, 0, 0, 3,   97, 1, 100, 0,   1, 97, 70, 63, 240, 0,
              0,   0,   0, 0, 0, 100, 0,  1, 98,  100, 0, 1,  97, 97, 1})},
      {"empty binary", bin(""), bytes({131, 109, 0, 0, 0, 0})},
      {"binary", bin("\x01\x02\x03"), bytes({131, 109, 0, 0, 0, 3, 1, 2, 3})},
      {"<<1:3>>", Term::bitstring("\x20", 3), bytes({131, 77, 0, 0, 0, 1, 3, 32})},
      {"<<255,1:1>>", Term::bitstring("\xff\x80", 1), bytes({131, 77, 0, 0, 0, 2, 1, 255, 128})},
      {"pid", pid("a@h", 1, 2, 3),
       bytes({131, 88, 100, 0, 3, 97, 64, 104, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3})},
      {"port", port("a@h", 7, 3), bytes({131, 89, 100, 0, 3, 97, 64, 104, 0, 0, 0, 7, 0, 0, 0, 3})},
      {"port of 28 bits", port("a@h", (1ULL << 28) - 1, 3),
       bytes({131, 89, 100, 0, 3, 97, 64, 104, 15, 255, 255, 255, 0, 0, 0, 3})},
      {"port beyond 28 bits", port("a@h", 1ULL << 28, 3),
       bytes({131, 120, 100, 0, 3, 97, 64, 104, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 3})},
      {"wide port", port("a@h", (1ULL << 40) + 7, 3),
       bytes({131, 120, 100, 0, 3, 97, 64, 104, 0, 0, 1, 0, 0, 0, 0, 7, 0, 0, 0, 3})},
      {"reference", ref("a@h", 3, {1, 2, 3}),
       bytes({131, 90, 0, 3, 100, 0, 3, 97, 64, 104, 0, 0, 0,
              3,   0,  0, 0, 1,   0, 0, 0,  2,  0,   0, 0, 3})},
  };
}

TEST(Codec, EncodingMatchesTermToBinary) {
  for (const auto& expected : expected_encodings()) {
    EXPECT_EQ(encode(expected.term), expected.bytes) << expected.what;
    DecodeResult back = decode_whole(expected.bytes);
    ASSERT_TRUE(back.ok()) << expected.what << ": " << back.error().message();
    EXPECT_EQ(back.term(), expected.term) << expected.what;
  }
}

TEST(Codec, ListsOfBytesUpTo65535LongAreStrings) {
  std::vector<Term> longest(65535, int_(1));
  EXPECT_EQ(encode(Term::list(longest)).substr(0, 4), bytes({131, 107, 255, 255}));
  longest.push_back(int_(1));
  EXPECT_EQ(encode(Term::list(longest)).substr(0, 6), bytes({131, 108, 0, 1, 0, 0}));
}

TEST(Codec, FunsKeepTheirExactBytes) {
  Term closure = decoded(kClosureWithFreeVariable);
  ASSERT_EQ(closure.type(), TermType::kFun);
  EXPECT_EQ(closure.fun_encoding(), kClosureWithFreeVariable.substr(1));
  EXPECT_EQ(encode(closure), kClosureWithFreeVariable);
  std::string exported =
      bytes({131, 113, 100, 0, 5, 108, 105, 115, 116, 115, 100, 0, 3, 109, 97, 112, 97, 2});
  EXPECT_EQ(encode(decoded(exported)), exported);  // fun lists:map/2
}

TEST(Codec, FunsNestedInFunsKeepTheirExactBytes) {
  // The closure with a second copy of itself appended as a free variable.
  std::string inner = kClosureWithFreeVariable.substr(1);
  std::string outer = inner;
  outer[29] = 2;  // two free variables
  outer += inner;
  std::uint32_t size = static_cast<std::uint32_t>(outer.size() - 1);
  for (int i = 0; i < 4; ++i) outer[1 + i] = static_cast<char>(size >> (24 - 8 * i));
  std::string encoding = bytes({131}) + outer;
  EXPECT_EQ(encode(decoded(encoding)), encoding);
}

TEST(Codec, GoldenCapturesReencodeToIdenticalBytes) {
  auto files = golden_files();
  ASSERT_GE(files.size(), 11u);
  for (const auto& path : files) {
    std::string original = read_file(path);
    DecodeResult result = decode_whole(original);
    ASSERT_TRUE(result.ok()) << path << ": " << result.error().message();
    EXPECT_EQ(encode(result.term()), original) << path;
  }
}

TEST(Codec, GoldenHeartbeatDecodesToTheTrackerMessage) {
  std::filesystem::path dir = std::filesystem::path(PRESENCE_GOLDEN_DIR) / "phoenix_pubsub-2.1.3";
  Term message = decoded(read_file(dir / "04_heartbeat_delta_3_joins.etf"));
  ASSERT_TRUE(message.is_tuple(4));
  EXPECT_TRUE(message[0].is_atom("forward_to_local"));
  EXPECT_EQ(message[1], bin("phx_presence:Elixir.T_shard0"));
  const Term& pub = message[2];
  ASSERT_TRUE(pub.is_tuple(5));
  EXPECT_TRUE(pub[1].is_atom("heartbeat"));
  const Term& state = pub[3];
  ASSERT_TRUE(state.is_map());
  ASSERT_NE(state.find("values"), nullptr);
  EXPECT_EQ(state.find("values")->map_entries().size(), 3u);
  EXPECT_TRUE(state.find("mode")->is_atom("delta"));
  const Term& replica = pub[2];
  EXPECT_EQ(replica[1], int_(1796314556334940));
}

// Random terms of every kind, in the canonical form decoding produces.
class TermGenerator {
 public:
  explicit TermGenerator(unsigned seed) : rng_(seed) {}

  Term any(int depth) {
    int kinds = depth > 2 ? 12 : 17;
    switch (pick(kinds)) {
      case 0:
        return int_(pick(256));
      case 1:
        return int_(static_cast<std::int32_t>(rng_()));
      case 2:
        return int_(static_cast<std::int64_t>(wide()));
      case 3:
        return big_integer();
      case 4:
        return floating();
      case 5:
        return atom();
      case 6:
        return binary();
      case 7:
        return bitstring();
      case 8:
        return pid(node(), rng_(), rng_() % 8192, rng_());
      case 9:
        return port(node(), pick(2) ? rng_() : wide(), rng_());
      case 10:
        return reference();
      case 11:
        return pick(2) ? decoded(kClosureWithFreeVariable) : export_fun();
      case 12:
        return Term::tuple(some(depth, depth > 0 || pick(8) ? pick(5) : 300));
      case 13:
        return Term::list(some(depth, pick(6)), pick(3) ? Term() : any(depth + 1));
      case 14:
        return Term::string(random_bytes(pick(30)));
      case 15:
        return map(depth, depth > 0 || pick(4) ? pick(6) : 40);
      default:
        return Term::list(some(depth, 1 + pick(4)), Term::tuple({}));
    }
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::uint64_t wide() { return (static_cast<std::uint64_t>(rng_()) << 32) | rng_(); }

  std::string random_bytes(int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>(pick(256)));
    return out;
  }

  std::vector<Term> some(int depth, int n) {
    std::vector<Term> out;
    for (int i = 0; i < n; ++i) out.push_back(any(depth + 1));
    return out;
  }

  Term big_integer() {
    std::vector<std::uint8_t> magnitude(9 + pick(300 - 9 + 1));
    for (auto& byte : magnitude) byte = static_cast<std::uint8_t>(pick(256));
    magnitude.back() = static_cast<std::uint8_t>(1 + pick(255));
    return big(pick(2) == 1, magnitude);
  }

  Term floating() {
    double value = 0;
    do {
      std::uint64_t bits = wide();
      std::memcpy(&value, &bits, sizeof value);
    } while (!std::isfinite(value));
    return pick(2) ? flt(value) : flt(pick(1000) / 8.0);
  }

  std::string atom_text() {
    static const char* const kAtoms[] = {"",
                                         "ok",
                                         "a@vm",
                                         "Elixir.Phoenix.Tracker",
                                         "\xc3\xa4\xc3\xb6",
                                         "\xce\xb1\xce\xb2",
                                         "\xf0\x9f\x98\x80 smile",
                                         "with space"};
    if (pick(10) == 0) return std::string(255, 'x');
    return kAtoms[pick(std::size(kAtoms))];
  }
  Term atom() { return atm(atom_text()); }
  std::string_view node() { return pick(2) ? "a@vm" : "\xce\xb1@host"; }

  Term binary() { return bin(random_bytes(pick(50) ? pick(40) : 70000)); }
  Term bitstring() { return Term::bitstring(random_bytes(1 + pick(10)), 1 + pick(7)); }

  Term reference() {
    std::vector<std::uint32_t> ids(1 + pick(5));
    for (auto& id : ids) id = rng_();
    return ref(node(), rng_(), ids);
  }

  Term export_fun() {
    std::string module = pick(2) ? "lists" : "\xc3\xa4";
    std::string encoding = bytes({131, 113, 118, 0, static_cast<int>(module.size())}) + module +
                           bytes({118, 0, 3, 'm', 'a', 'p', 97, pick(256)});
    return decoded(encoding);
  }

  Term map(int depth, int n) {
    std::vector<std::pair<Term, Term>> entries;
    for (int i = 0; i < n; ++i) entries.emplace_back(any(depth + 1), any(depth + 1));
    return Term::map(std::move(entries));
  }

  std::mt19937 rng_;
};

TEST(Codec, GeneratedTermsRoundTripExactly) {
  TermGenerator generator(20240601);
  for (int i = 0; i < 3000; ++i) {
    Term term = generator.any(0);
    std::string encoding = encode(term);
    DecodeResult back = decode_whole(encoding);
    ASSERT_TRUE(back.ok()) << i << ": " << back.error().message() << " " << term.to_string();
    ASSERT_EQ(back.term(), term) << i << ": " << term.to_string();
    ASSERT_EQ(back.term().hash(), term.hash()) << i;
    ASSERT_EQ(encode(back.term()), encoding) << i;
  }
}

TEST(Codec, DecodeAdvancesThroughConsecutiveTerms) {
  std::string buffer = encode(atm("first")) + encode(int_(2)) + encode(Term::string("x"));
  std::size_t offset = 0;
  std::vector<Term> terms;
  while (offset < buffer.size()) {
    DecodeResult result = decode(buffer, &offset);
    ASSERT_TRUE(result.ok()) << result.error().message();
    terms.push_back(result.term());
  }
  EXPECT_EQ(terms, (std::vector<Term>{atm("first"), int_(2), Term::string("x")}));
}

TEST(Codec, DecodeLeavesOffsetOnError) {
  std::string buffer = encode(int_(1)) + bytes({131, 104, 1});
  std::size_t offset = 3;
  DecodeResult result = decode(buffer, &offset);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, DecodeErrc::kTruncated);
  EXPECT_EQ(offset, 3u);
}

// ---------------------------------------------------------------------------
// Decoding of other encodings the BEAM accepts

TEST(Codec, LatinOneAtomsDecodeToUtf8) {
  Term atom = decoded(bytes({131, 100, 0, 1, 228}));
  EXPECT_EQ(atom.as_atom().text(), "\xc3\xa4");
  EXPECT_EQ(decoded(bytes({131, 115, 1, 228})), atom);
  EXPECT_EQ(decoded(bytes({131, 118, 0, 2, 0xc3, 0xa4})), atom);
  EXPECT_EQ(decoded(bytes({131, 119, 2, 0xc3, 0xa4})), atom);
}

TEST(Codec, StringExtDecodesToAListOfIntegers) {
  Term list = decoded(bytes({131, 107, 0, 3, 0, 200, 65}));
  EXPECT_EQ(list, Term::list({int_(0), int_(200), int_(65)}));
  EXPECT_EQ(decoded(bytes({131, 107, 0, 0})), Term());
}

TEST(Codec, NonCanonicalFormsDecodeToCanonicalTerms) {
  EXPECT_EQ(decoded(bytes({131, 110, 2, 1, 5, 0})), int_(-5));            // small big
  EXPECT_EQ(decoded(bytes({131, 111, 0, 0, 0, 1, 0, 7})), int_(7));       // large big
  EXPECT_EQ(decoded(bytes({131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2})),  // [1|"\2"]
            Term::list({int_(1), int_(2)}));
  EXPECT_EQ(decoded(bytes({131, 108, 0, 0, 0, 0, 106})), Term());
  EXPECT_EQ(decoded(bytes({131, 116, 0, 0, 0, 2, 100, 0, 1, 98, 97, 2, 100, 0, 1, 97, 97, 1})),
            Term::map({{atm("a"), int_(1)}, {atm("b"), int_(2)}}));
}

TEST(Codec, OlderPidPortAndReferenceFormsDecode) {
  // PID_EXT, PORT_EXT, REFERENCE_EXT and NEW_REFERENCE_EXT of node a@h.
  Term old_pid = decoded(bytes({131, 103, 100, 0, 3, 97, 64, 104, 0, 0, 0, 5, 0, 0, 0, 6, 2}));
  EXPECT_EQ(old_pid.as_pid(), (PidValue{Atom("a@h"), 5, 6, 2}));
  Term old_port = decoded(bytes({131, 102, 100, 0, 3, 97, 64, 104, 0, 0, 0, 9, 1}));
  EXPECT_EQ(old_port.as_port(), (PortValue{Atom("a@h"), 9, 1}));
  Term old_ref = decoded(bytes({131, 101, 100, 0, 3, 97, 64, 104, 0, 0, 0, 4, 2}));
  EXPECT_EQ(old_ref.as_reference().ids, std::vector<std::uint32_t>{4});
  Term new_ref =
      decoded(bytes({131, 114, 0, 2, 100, 0, 3, 97, 64, 104, 1, 0, 0, 0, 4, 0, 0, 0, 5}));
  EXPECT_EQ(new_ref.as_reference(), (RefValue{Atom("a@h"), 1, {4, 5}}));
}

TEST(Codec, OldFloatFormatDecodes) {
  std::string text = "1.50000000000000000000e+00";
  text.resize(31, '\0');
  EXPECT_EQ(decoded(bytes({131, 99}) + text), flt(1.5));
}

// ---------------------------------------------------------------------------
// Malformed input

TEST(Codec, EveryTruncationOfEveryGoldenCaptureIsTruncated) {
  for (const auto& path : golden_files()) {
    std::string original = read_file(path);
    for (std::size_t length = 0; length < original.size(); ++length) {
      DecodeResult result = decode_whole(std::string_view(original).substr(0, length));
      ASSERT_FALSE(result.ok()) << path << " at " << length;
      EXPECT_EQ(result.error().code, DecodeErrc::kTruncated) << path << " at " << length;
      EXPECT_LE(result.error().offset, length) << path;
    }
  }
}

TEST(Codec, EveryTruncationOfGeneratedTermsIsAnError) {
  TermGenerator generator(99);
  for (int i = 0; i < 100; ++i) {
    std::string encoding = encode(generator.any(0));
    for (std::size_t length = 0; length < encoding.size(); length += 1 + length / 64) {
      DecodeResult result = decode_whole(std::string_view(encoding).substr(0, length));
      ASSERT_FALSE(result.ok()) << i << " at " << length;
      ASSERT_EQ(result.error().code, DecodeErrc::kTruncated) << i << " at " << length;
    }
  }
}

TEST(Codec, MissingVersionByteIsBadVersion) {
  EXPECT_EQ(error_of(bytes({130, 97, 1})), DecodeErrc::kBadVersion);
  EXPECT_EQ(error_of(bytes({97, 1})), DecodeErrc::kBadVersion);
  EXPECT_EQ(error_of(""), DecodeErrc::kTruncated);
}

TEST(Codec, UnknownAndCompressedTagsAreUnsupported) {
  EXPECT_EQ(error_of(bytes({131, 200})), DecodeErrc::kUnsupportedTag);
  EXPECT_EQ(error_of(bytes({131, 80, 0, 0, 0, 1, 120, 156, 3, 0})), DecodeErrc::kUnsupportedTag);
  EXPECT_EQ(error_of(bytes({131, 82, 0})), DecodeErrc::kUnsupportedTag);  // atom cache
}

TEST(Codec, ErrorOffsetPointsAtTheBadTerm) {
  DecodeResult result = decode_whole(bytes({131, 104, 2, 97, 1, 200}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, DecodeErrc::kUnsupportedTag);
  EXPECT_EQ(result.error().offset, 5u);
  EXPECT_EQ(result.error().message(), "unsupported_tag term at byte 5");
}

TEST(Codec, AbsurdLengthsAreRefusedBeforeAllocating) {
  const std::string cases[] = {
      bytes({131, 108, 255, 255, 255, 255, 106}),    // list
      bytes({131, 105, 255, 255, 255, 255, 97, 1}),  // tuple
      bytes({131, 116, 127, 255, 255, 255, 97, 1}),  // map
      bytes({131, 109, 255, 255, 255, 255, 1}),      // binary
      bytes({131, 77, 255, 255, 255, 255, 3, 1}),    // bitstring
      bytes({131, 100, 255, 255, 97}),               // atom
      bytes({131, 107, 255, 255, 1}),                // string
      bytes({131, 111, 255, 255, 255, 255, 0, 1}),   // big
      bytes({131, 112, 255, 255, 255, 255, 0}),      // fun
      bytes({131, 88, 100, 255, 255, 97}),           // pid node
  };
  for (const auto& encoding : cases) {
    EXPECT_EQ(error_of(encoding), DecodeErrc::kTruncated) << static_cast<int>(encoding[1]);
  }
}

TEST(Codec, ReferencesWithMoreThanFiveWordsAreMalformed) {
  std::string encoding = bytes({131, 90, 0, 6, 100, 0, 1, 97, 0, 0, 0, 0});
  encoding += std::string(24, '\1');
  EXPECT_EQ(error_of(encoding), DecodeErrc::kMalformed);
  EXPECT_EQ(error_of(bytes({131, 90, 0, 0, 100, 0, 1, 97, 0, 0, 0, 0})), DecodeErrc::kMalformed);
}

std::string nested(const std::string& open, const std::string& close, int depth) {
  std::string out = bytes({131});
  for (int i = 0; i < depth; ++i) out += open;
  out += bytes({106});
  for (int i = 0; i < depth; ++i) out += close;
  return out;
}

TEST(Codec, NestingBeyondTheLimitIsTooDeep) {
  std::string list_open = bytes({108, 0, 0, 0, 1});
  std::string list_close = bytes({106});
  std::string tuple_open = bytes({104, 1});
  std::string map_open = bytes({116, 0, 0, 0, 1, 97, 1});
  EXPECT_TRUE(decode_whole(nested(list_open, list_close, kMaxDecodeDepth)).ok());
  EXPECT_TRUE(decode_whole(nested(tuple_open, "", kMaxDecodeDepth)).ok());
  EXPECT_TRUE(decode_whole(nested(map_open, "", kMaxDecodeDepth)).ok());
  EXPECT_EQ(error_of(nested(list_open, list_close, kMaxDecodeDepth + 1)), DecodeErrc::kTooDeep);
  EXPECT_EQ(error_of(nested(tuple_open, "", kMaxDecodeDepth + 1)), DecodeErrc::kTooDeep);
  EXPECT_EQ(error_of(nested(map_open, "", kMaxDecodeDepth + 1)), DecodeErrc::kTooDeep);
  EXPECT_EQ(error_of(nested(tuple_open, "", 1000000)), DecodeErrc::kTooDeep);
}

TEST(Codec, BytesAfterTheTermAreTrailing) {
  DecodeResult result = decode_whole(bytes({131, 97, 1, 0}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, DecodeErrc::kTrailingBytes);
  EXPECT_EQ(result.error().offset, 3u);
}

TEST(Codec, ValuesTheBeamRefusesAreMalformed) {
  // A map naming a key twice, a NaN, an infinity, a bitstring of 0 or 9 bits in its last
  // byte, a big integer with sign 2, and an atom that is not UTF-8.
  EXPECT_EQ(error_of(bytes({131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2})),
            DecodeErrc::kMalformed);
  EXPECT_EQ(error_of(bytes({131, 70, 127, 248, 0, 0, 0, 0, 0, 0})), DecodeErrc::kMalformed);
  EXPECT_EQ(error_of(bytes({131, 70, 127, 240, 0, 0, 0, 0, 0, 0})), DecodeErrc::kMalformed);
  EXPECT_EQ(error_of(bytes({131, 77, 0, 0, 0, 1, 0, 1})), DecodeErrc::kMalformed);
  EXPECT_EQ(error_of(bytes({131, 77, 0, 0, 0, 1, 9, 1})), DecodeErrc::kMalformed);
  EXPECT_EQ(error_of(bytes({131, 110, 1, 2, 1})), DecodeErrc::kMalformed);
  EXPECT_EQ(error_of(bytes({131, 119, 1, 255})), DecodeErrc::kMalformed);
}

TEST(Codec, FunsWithInconsistentSizesAreRefused) {
  std::string shorter = kClosureWithFreeVariable;
  shorter[5] = static_cast<char>(shorter[5] - 1);  // size one byte short of its contents
  EXPECT_FALSE(decode_whole(shorter).ok());
  std::string longer = kClosureWithFreeVariable + "\x6a";
  longer[5] = static_cast<char>(longer[5] + 1);  // size covers a byte after its contents
  EXPECT_EQ(error_of(longer), DecodeErrc::kMalformed);
  std::string bad_free_variable = kClosureWithFreeVariable;
  bad_free_variable[bad_free_variable.size() - 5] = 4;  // <<"free">> claims 4 more bytes
  bad_free_variable[bad_free_variable.size() - 8] = 1;
  EXPECT_FALSE(decode_whole(bad_free_variable).ok());
}

TEST(Codec, MutatedGoldenCapturesNeverCrashTheDecoder) {
  std::mt19937 rng(1234);
  int decoded_ok = 0;
  int refused = 0;
  for (const auto& path : golden_files()) {
    std::string original = read_file(path);
    for (int round = 0; round < 3000; ++round) {
      std::string mutated = original;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        std::size_t at = 1 + rng() % (mutated.size() - 1);
        mutated[at] = static_cast<char>(rng() % 3 ? rng() : (rng() % 2 ? 0 : 255));
      }
      DecodeResult result = decode_whole(mutated);
      if (!result.ok()) {
        ++refused;
        ASSERT_LT(result.error().offset, mutated.size() + 1);
        continue;
      }
      ++decoded_ok;
      // Whatever decodes re-encodes to something that decodes to the same term.
      DecodeResult again = decode_whole(encode(result.term()));
      ASSERT_TRUE(again.ok()) << path << " round " << round;
      ASSERT_EQ(again.term(), result.term()) << path << " round " << round;
    }
  }
  EXPECT_GT(decoded_ok, 0);
  EXPECT_GT(refused, 0);
}

TEST(Codec, RandomBytesNeverCrashTheDecoder) {
  std::mt19937 rng(42);
  for (int round = 0; round < 50000; ++round) {
    std::string junk = bytes({131});
    int length = static_cast<int>(rng() % 40);
    for (int i = 0; i < length; ++i) {
      // Mostly tag bytes, so that the decoder gets past the first byte.
      junk.push_back(static_cast<char>(rng() % 2 ? 70 + rng() % 51 : rng()));
    }
    DecodeResult result = decode_whole(junk);
    if (!result.ok()) {
      ASSERT_LE(result.error().offset, junk.size());
    }
  }
}

// ---------------------------------------------------------------------------
// Rendering

TEST(TermRendering, LooksLikeErlang) {
  Term heartbeat = Term::tuple(
      {atm("pub"), atm("heartbeat"), Term::tuple({atm("a@vm"), int_(17)}), atm("empty")});
  EXPECT_EQ(heartbeat.to_string(), "{pub,heartbeat,{a@vm,17},empty}");
  EXPECT_EQ(Term::map({{atm("phx_ref"), bin("x")}}).to_string(), "#{phx_ref => <<\"x\">>}");
  EXPECT_EQ(atm("Elixir.Phoenix").to_string(), "'Elixir.Phoenix'");
  EXPECT_EQ(atm("").to_string(), "''");
  EXPECT_EQ(atm("it's").to_string(), "'it\\'s'");
  EXPECT_EQ(atm("receive").to_string(), "'receive'");
  EXPECT_EQ(Term::string("abc").to_string(), "\"abc\"");
  EXPECT_EQ(Term::list({int_(1), int_(2)}, int_(3)).to_string(), "[1,2|3]");
  EXPECT_EQ(Term().to_string(), "[]");
  EXPECT_EQ(bin(bytes({0, 255})).to_string(), "<<0,255>>");
  EXPECT_EQ(bin("caf\xc3\xa9").to_string(), "<<\"caf\xc3\xa9\"/utf8>>");
  EXPECT_EQ(Term::bitstring("\xff\x80", 1).to_string(), "<<255,1:1>>");
  EXPECT_EQ(flt(1.5).to_string(), "1.5");
  EXPECT_EQ(flt(1.0).to_string(), "1.0");
  EXPECT_EQ(flt(1e300).to_string(), "1.0e+300");
  EXPECT_EQ(big(true, {0, 0, 0, 0, 0, 0, 0, 0, 1}).to_string(), "-18446744073709551616");
  EXPECT_EQ(pid("a@h", 1, 2, 3).to_string(), "<a@h.1.2>");
  EXPECT_EQ(ref("a@h", 1, {1, 2}).to_string(), "#Ref<a@h.2.1>");
  EXPECT_EQ(port("a@h", 7, 1).to_string(), "#Port<a@h.7>");
}

TEST(TermRendering, VeryLargeTermsAreCutShort) {
  std::vector<Term> many(100000, bin("payload"));
  std::string text = Term::list(many).to_string();
  EXPECT_LE(text.size(), 4096u + 3u);
  EXPECT_EQ(text.substr(text.size() - 3), "...");
}

TEST(TermRendering, TypeAndErrorNamesAreStable) {
  EXPECT_STREQ(to_string(TermType::kBitString), "bitstring");
  EXPECT_STREQ(to_string(DecodeErrc::kTooDeep), "too_deep");
}

}  // namespace
}  // namespace presence
