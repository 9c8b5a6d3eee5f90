// Expected values were measured on a real BEAM (OTP 25, erts 13.1.5) with
// erlang:phash2/1 and erlang:phash2/2; each group says which terms.
#include "term/phash2.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "term/term.h"

namespace presence {
namespace {

constexpr std::uint32_t kFull = 0;  // range 0 stands for 2^32: the full hash

struct Expected {
  Term term;
  std::uint32_t hash27;  // erlang:phash2(T)
  std::uint32_t hash32;  // erlang:phash2(T, 1 bsl 32)
};

void expect_all(const std::vector<Expected>& cases) {
  for (const Expected& c : cases) {
    EXPECT_EQ(phash2(c.term), c.hash27) << c.term.to_string();
    EXPECT_EQ(phash2(c.term, kFull), c.hash32) << c.term.to_string();
  }
}

Term big(bool negative, std::vector<std::uint8_t> magnitude) {
  return Term::big_integer(BigIntValue{negative, std::move(magnitude)});
}

// 2^bits as a little-endian magnitude.
std::vector<std::uint8_t> power_of_two(int bits) {
  std::vector<std::uint8_t> magnitude(bits / 8 + 1, 0);
  magnitude.back() = static_cast<std::uint8_t>(1 << (bits % 8));
  return magnitude;
}

Term pid(std::string_view node, std::uint32_t id, std::uint32_t serial, std::uint32_t creation) {
  return Term::pid(PidValue{Atom(node), id, serial, creation});
}

Term port(std::string_view node, std::uint64_t id, std::uint32_t creation) {
  return Term::port(PortValue{Atom(node), id, creation});
}

Term ref(std::string_view node, std::uint32_t creation, std::vector<std::uint32_t> ids) {
  return Term::reference(RefValue{Atom(node), creation, std::move(ids)});
}

Term bytes_list(std::vector<std::int64_t> values, Term tail = Term()) {
  std::vector<Term> elements;
  for (std::int64_t v : values) elements.push_back(Term::integer(v));
  return Term::list(std::move(elements), std::move(tail));
}

// A fun from the hex of term_to_binary(Fun), version byte dropped.
Term fun_from_hex(std::string_view hex) {
  std::string bytes;
  for (std::size_t i = 2; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return Term::fun(bytes);
}

TEST(Phash2, TopicsMapToTheSameShardsAsTheBeamForPoolSizesOneToEight) {
  const std::vector<std::pair<std::string, std::vector<std::uint32_t>>> topics = {
      {"room:1", {0, 1, 1, 1, 2, 1, 4, 1}},
      {"room:lobby", {0, 0, 1, 0, 4, 4, 0, 4}},
      {"users:123", {0, 1, 2, 1, 2, 5, 6, 1}},
      {"topic:0", {0, 1, 1, 1, 0, 1, 6, 5}},
      {"topic:99999", {0, 1, 1, 3, 4, 1, 5, 7}},
      {"", {0, 1, 1, 1, 4, 1, 4, 5}},
      {"phx:presence:tracker", {0, 1, 2, 3, 2, 5, 4, 3}},
      {"a", {0, 1, 0, 3, 0, 3, 6, 7}},
      {"chat:g\xc3\xa9n\xc3\xa9ral", {0, 0, 2, 2, 1, 2, 2, 6}},
      {"\xe9\x83\xa8\xe5\xb1\x8b:\xe6\x9d\xb1\xe4\xba\xac", {0, 0, 1, 0, 1, 4, 3, 0}},
  };
  for (const auto& [topic, shards] : topics) {
    for (std::uint32_t pool_size = 1; pool_size <= 8; ++pool_size) {
      EXPECT_EQ(phash2(Term::binary(topic), pool_size), shards[pool_size - 1])
          << topic << " with pool size " << pool_size;
    }
  }
}

TEST(Phash2, WithoutRangeKeepsTheLow27BitsOfTheFullHash) {
  const Term topic = Term::binary("room:1");
  EXPECT_EQ(phash2(topic), phash2(topic, kFull) & ((1u << 27) - 1));
  EXPECT_LT(phash2(Term::binary("topic:99999")), 1u << 27);
  EXPECT_EQ(phash2(Term(), 1u << 27), phash2(Term()));
}

TEST(Phash2, RangeIsAppliedAsARemainderOfTheFullHash) {
  const Term topic = Term::binary("users:123");
  const std::uint32_t full = phash2(topic, kFull);
  for (std::uint32_t range : {1u, 2u, 3u, 7u, 1000u, 65536u, 4294967295u}) {
    EXPECT_EQ(phash2(topic, range), full % range) << range;
  }
}

TEST(Phash2, IntegersAroundEveryEncodingBoundaryHashAsOnTheBeam) {
  expect_all({
      {Term::integer(0), 88723725, 3175731469u},
      {Term::integer(1), 2614250, 539485162},
      {Term::integer(-1), 44071773, 1117813597},
      {Term::integer(255), 44734653, 715823293},
      {Term::integer(256), 37021655, 3929335767u},
      {Term::integer(134217727), 112602999, 4273352567u},
      {Term::integer(134217728), 12354923, 2562491755u},
      {Term::integer(-134217728), 69672967, 874979335},
      {Term::integer(-134217729), 76739502, 1418916782},
      {Term::integer(2147483647), 124127543, 2137393463},
      {Term::integer(2147483648), 14246037, 2832818325u},
      {Term::integer(-2147483648), 62030289, 1672643025},
      {Term::integer(4294967295), 95053261, 2108319181},
      {Term::integer(4294967296), 95057355, 2108323275},
      {Term::integer(-4294967296), 35930262, 2586067094u},
      {Term::integer(576460752303423487), 27520264, 1638133000},
      {Term::integer(576460752303423488), 26969617, 2442888721u},
      {Term::integer(-576460752303423488), 35173814, 2316875190u},
      {Term::integer(-576460752303423489), 36462311, 2855034599u},
      {Term::integer(INT64_MAX), 28179613, 2712534173u},
      {Term::integer(INT64_MIN), 126213383, 1736826119},
  });
}

TEST(Phash2, BigIntegersHashByTheir64BitDigits) {
  // 2^200 - 12345, least significant byte first.
  std::vector<std::uint8_t> magnitude(25, 0xFF);
  magnitude[0] = 0xC7;
  magnitude[1] = 0xCF;
  expect_all({
      {big(false, {0, 0, 0, 0, 0, 0, 0, 0x80}), 39852678, 710941318},  // 2^63
      {big(false, std::vector<std::uint8_t>(8, 0xFF)), 53435350, 321870806},
      {big(false, power_of_two(64)), 103122609, 2519041713u},
      {big(true, power_of_two(64)), 13457787, 2563594619u},
      {big(false, power_of_two(100)), 126219984, 528873168},
      {big(true, magnitude), 109552317, 3062342333u},
  });
}

TEST(Phash2, FloatsHashByTheirBitsAndNegativeZeroAsZero) {
  expect_all({
      {Term::floating(0.0), 20875736, 423528920},
      {Term::floating(-0.0), 20875736, 423528920},
      {Term::floating(1.0), 77147068, 3029937084u},
      {Term::floating(-1.0), 103700184, 1043224280},
      {Term::floating(0.5), 55691757, 4216441325u},
      {Term::floating(3.141592653589793), 93376775, 764465415},
      {Term::floating(1.0e300), 119088650, 387524106},
      {Term::floating(-2.5e-308), 97833032, 1037357128},
      {Term::floating(5.0e-324), 107647591, 3731526247u},
  });
}

TEST(Phash2, AtomsHashByTheirTextWithLatin1CharactersCountedOnce) {
  expect_all({
      {Term::atom(""), 0, 0},
      {Term::atom("ok"), 1883, 1883},
      {Term::atom("true"), 506293, 506293},
      {Term::atom("nil"), 29948, 29948},
      {Term::atom("Elixir.Phoenix.Tracker"), 21012738, 21012738},
      {Term::atom("\xc3\xa9"), 233, 233},                              // 'é'
      {Term::atom("\xc3\xbf\xc3\xbc"), 4332, 4332},                    // 'ÿü'
      {Term::atom("\xe6\x97\xa5\xe6\x9c\xac"), 117588076, 251805804},  // '日本'
      {Term::atom("a\xe2\x82\xac"
                  "b"),
       7318818, 7318818},  // 'a€b'
      {Term::atom("node@host"), 43426804, 177644532},
  });
}

TEST(Phash2, BinariesHashInTwelveByteBlocks) {
  expect_all({
      {Term::binary(""), 13708901, 147926629},
      {Term::binary(std::string(1, '\0')), 96315567, 2914887855u},
      {Term::binary("abc"), 98228475, 1306188027},
      {Term::binary("abcdefghijk"), 96993671, 96993671},
      {Term::binary("abcdefghijkl"), 15432855, 686521495},
      {Term::binary("abcdefghijklm"), 11441572, 3501102500u},
      {Term::binary("abcdefghijklmnopqrstuvwx"), 73490061, 2489409165u},
      {Term::binary("abcdefghijklmnopqrstuvwxy"), 80875862, 3838972246u},
      {Term::binary("\xff\xfe\xfd\xfc"), 78580677, 1689193413},
  });
}

TEST(Phash2, BitstringsHashTheirTrailingBitsSeparately) {
  expect_all({
      {Term::bitstring(std::string(1, '\x80'), 1), 102233125, 3994547237u},      // <<1:1>>
      {Term::bitstring(std::string(1, '\0'), 7), 116266720, 1055790816},         // <<0:7>>
      {Term::bitstring(std::string(1, '\xc0'), 2), 77228721, 1285188273},        // <<3:2>>
      {Term::bitstring(std::string("\x01\x02\x18", 3), 5), 6593870, 946117966},  // <<1,2,3:5>>
      {Term::bitstring("abcdefghijkl\xa0", 3), 34478449, 2584615281u},  // <<"abcdefghijkl",5:3>>
  });
}

TEST(Phash2, StringsArePackedFourBytesToAStep) {
  expect_all({
      {Term(), 113427502, 3468870702u},
      {Term::string("a"), 49011133, 2733365693u},
      {Term::string("ab"), 98428323, 2380129699u},
      {Term::string("abc"), 117343302, 519996486},
      {Term::string("abcd"), 7922743, 1752753207},
      {Term::string("abcde"), 71169904, 2487089008u},
      {Term::string("hello world"), 124727853, 2943300141u},
      {bytes_list({0}), 10493030, 3768589414u},
      {bytes_list({255}), 46818295, 717906935},
      {bytes_list({256}), 73608398, 1684221134},
      {bytes_list({-1}), 42412580, 3800508964u},
      {bytes_list({1, 256, 2}), 27752983, 2041018903},
  });
}

TEST(Phash2, ListsHashTheirElementsInOrderThenTheirTail) {
  const Term a = Term::atom("a");
  const Term b = Term::atom("b");
  expect_all({
      {Term::list({a}), 23864141, 1634476877},
      {Term::list({a, b}), 9075654, 3632954310u},
      {Term::list({Term::integer(1), a, Term::integer(2), Term::integer(3), Term::integer(4),
                   Term::integer(5), b}),
       9436035, 3364879235u},
      {Term::list({a}, b), 74710280, 2356411656u},
      {bytes_list({1, 2}, Term::integer(3)), 8851781, 4169601349u},
      {bytes_list({1, 2, 3, 4}, Term::binary("x")), 40920270, 1248879822},
      {Term::list({Term()}), 96416884, 499070068},
      {Term::list({Term(), Term()}), 67164138, 67164138},
      {Term::list({bytes_list({1, 2}), bytes_list({3})}), 118504057, 1192245881},
      {Term::list({Term::tuple({})}), 24335964, 4050867804u},
  });
}

TEST(Phash2, TuplesHashTheirArityThenTheirElements) {
  const Term a = Term::atom("a");
  expect_all({
      {Term::tuple({}), 87486268, 221703996},
      {Term::tuple({a}), 35332806, 2853905094u},
      {Term::tuple({a, Term::atom("b")}), 101277806, 1980325998},
      {Term::tuple(
           {Term::integer(1),
            Term::tuple({Term::integer(2), Term::tuple({Term::integer(3), Term::tuple({})})})}),
       64744669, 198962397},
      {Term::tuple({Term::binary("room:1"), Term::atom("self_placeholder")}), 11187749,
       2829760037u},
      {Term::tuple({Term(), Term::map({})}), 108348622, 3195356366u},
      {Term::tuple({Term::atom("ok"), bytes_list({1, 2, 3}),
                    Term::map({{a, Term::tuple({Term::atom("b")})}})}),
       90295873, 90295873},
  });
}

TEST(Phash2, MapsHashAsOnTheBeamSmallAndLarge) {
  const Term a = Term::atom("a");
  std::vector<std::pair<Term, Term>> squares;
  for (std::int64_t i = 1; i <= 33; ++i)
    squares.emplace_back(Term::integer(i), Term::integer(i * i));
  std::vector<std::pair<Term, Term>> atom_keys;
  for (int i = 1; i <= 40; ++i) {
    atom_keys.emplace_back(Term::atom("k" + std::to_string(i)),
                           Term::binary(std::string(1, static_cast<char>(i))));
  }
  expect_all({
      {Term::map({}), 39679005, 844985373},
      {Term::map({{a, Term::integer(1)}}), 59617982, 1401795262},
      {Term::map({{Term::integer(1), a}}), 108954384, 2659091216u},
      {Term::map({{a, Term::integer(1)}, {Term::atom("b"), Term::integer(2)}}), 103634663,
       1982682855},
      {Term::map(
           {{Term::binary("k"), bytes_list({1, 2})}, {Term::floating(1.5), Term::atom("nil")}}),
       141394, 805447762},
      {Term::map({{a, Term::map({{Term::atom("b"), Term::map({})}})}}), 74242219, 2624379051u},
      {Term::map({{Term::atom("phx_ref"), Term::binary("F1xQJd2aQ5mB7Qe4")},
                  {Term::atom("name"), Term::binary("user 1")}}),
       90379622, 1164121446},
      {Term::map(squares), 62718441, 3820814825u},
      {Term::map(atom_keys), 16108961, 150326689},
  });
}

TEST(Phash2, MapsHashIndependentlyOfTheOrderEntriesWereGiven) {
  std::vector<std::pair<Term, Term>> forward;
  std::vector<std::pair<Term, Term>> backward;
  for (int i = 0; i < 50; ++i) {
    forward.emplace_back(Term::binary("key" + std::to_string(i)), Term::integer(i));
    backward.emplace(backward.begin(), Term::binary("key" + std::to_string(i)), Term::integer(i));
  }
  EXPECT_EQ(phash2(Term::map(forward), kFull), phash2(Term::map(backward), kFull));
}

TEST(Phash2, PidsHashByTheirIdAloneWhateverTheirNodeSerialAndCreation) {
  expect_all({
      {pid("a@host", 0, 0, 0), 39589991, 2858162279u},
      {pid("a@host", 85, 0, 1), 59032525, 461685709},
      {pid("b@other", 85, 3, 1234567), 59032525, 461685709},
      {pid("a@host", 32767, 0, 1), 91982837, 3447426037u},
      {pid("a@host", 32768, 0, 1), 20944570, 289380026},
      {pid("a@host", 268435455, 0, 1), 120134696, 791223336},
      {pid("a@host", 4294967295u, 8191, 1), 89530718, 1163272542},
  });
}

TEST(Phash2, PidsPickTheSameBroadcastGroupAsTheBeam) {
  const std::vector<std::uint32_t> groups = {0, 1, 1, 1, 4, 1, 2, 5};
  for (std::uint32_t size = 1; size <= 8; ++size) {
    EXPECT_EQ(phash2(pid("a@host", 85, 0, 1), size), groups[size - 1]) << size;
  }
}

TEST(Phash2, PortsHashBothHalvesOfTheirId) {
  expect_all({
      {port("a@host", 0, 0), 20126125, 2167609773u},
      {port("a@host", 7, 1), 101549390, 3725428046u},
      {port("a@host", 4294967295u, 1), 87295268, 2771649828u},
      {port("a@host", 4294967296u, 1), 9605051, 3633483707u},
      {port("a@host", (std::uint64_t{1} << 63) + 5, 2), 132098907, 803187547},
  });
}

TEST(Phash2, ReferencesHashByTheirFirstIdWord) {
  expect_all({
      {ref("a@host", 1, {1, 2, 3}), 118531908, 118531908},
      {ref("b@other", 9, {1, 7, 7}), 118531908, 118531908},
      {ref("a@host", 1, {4000000000u, 2, 3, 4, 5}), 12881916, 1623494652},
      {ref("a@host", 1, {42}), 44125440, 983649536},
  });
}

TEST(Phash2, ExportFunsHashByModuleFunctionAndArity) {
  expect_all({
      {fun_from_hex("83716400056C697374736400036D61706102"), 34981515, 840287883},  // lists:map/2
      {fun_from_hex("837164000665726C616E6764000473656C666100"), 62324914, 3149332658u},
  });
}

TEST(Phash2, LocalFunsHashByModuleIndexUniqueAndCapturedValues) {
  expect_all({
      {fun_from_hex("83700000004801A23EB36AA7C978A11D2D2F80F0EE5E4D000000000000000064000476616C7361"
                    "00620511F59B5864000D6E6F6E6F6465406E6F686F7374000000090000000000000000"),
       1909125, 136126853},
      {fun_from_hex("83700000005F011C58FDBFFBC3A472EDA0C778066C41A40000000000000002640002667661"
                    "006200E2C7ED5864000D6E6F6E6F6465406E6F686F73740000000900000000000000006D0000"
                    "000863617074757265646C000000026101640001616A"),
       99206551, 3320432023u},
      {fun_from_hex("83700000005A011C58FDBFFBC3A472EDA0C778066C41A40000000000000002640002667661"
                    "006200E2C7ED5864000D6E6F6E6F6465406E6F686F7374000000090000000000000000740000"
                    "00016400016B463FF80000000000006107"),
       75647466, 2760002026u},
  });
}

TEST(Phash2, UnreadableFunEncodingHashesAsItsBytes) {
  const std::string bytes("\x70\x00\x01", 3);
  EXPECT_EQ(phash2(Term::fun(bytes), kFull), phash2(Term::binary(bytes), kFull));
}

}  // namespace
}  // namespace presence
