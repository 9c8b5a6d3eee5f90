#include "crdt/wire.h"

#include <string_view>
#include <unordered_map>

namespace presence {

namespace {

// The atoms of the wire shapes, interned once.
struct Atoms {
  Term struct_key = Term::atom("__struct__");
  Term state_module = Term::atom("Elixir.Phoenix.Tracker.State");
  Term mapset_module = Term::atom("Elixir.MapSet");
  Term replica = Term::atom("replica");
  Term context = Term::atom("context");
  Term clouds = Term::atom("clouds");
  Term values = Term::atom("values");
  Term pids = Term::atom("pids");
  Term mode = Term::atom("mode");
  Term delta = Term::atom("delta");
  Term replicas = Term::atom("replicas");
  Term range = Term::atom("range");
  Term map = Term::atom("map");
  Term version = Term::atom("version");
  Term nil = Term::atom("nil");
  Term normal = Term::atom("normal");
  Term unset = Term::atom("unset");
  Term up = Term::atom("up");
  Term down = Term::atom("down");
};

const Atoms& atoms() {
  static const Atoms* instance = new Atoms();  // never destroyed: used by static encoders too
  return *instance;
}

constexpr std::int64_t kMapSetVersion = 2;
constexpr std::size_t kMaxDetail = 200;

WireError error(WireErrc code, std::string_view what, const Term& term) {
  std::string shown = term.to_string();
  if (shown.size() > kMaxDetail) shown = shown.substr(0, kMaxDetail) + "...";
  return {code, std::string(what) + ": " + shown};
}

// ---- decoding -----------------------------------------------------------

std::optional<Clock> clock_of(const Term& term) {
  if (!term.is_integer() || term.as_integer() < 0) return std::nullopt;
  return term.as_integer();
}

std::optional<ReplicaRef> ref_of(const Term& term) {
  if (!term.is_tuple(2) || !term[0].is_atom() || !term[1].is_integer()) return std::nullopt;
  return ReplicaRef{term[0].as_atom(), term[1].as_integer()};
}

std::optional<Tag> tag_of(const Term& term) {
  if (!term.is_tuple(2)) return std::nullopt;
  auto replica = ref_of(term[0]);
  auto clock = clock_of(term[1]);
  if (!replica || !clock) return std::nullopt;
  return Tag{*replica, *clock};
}

std::optional<Context> context_of(const Term& term) {
  if (!term.is_map()) return std::nullopt;
  Context context;
  for (const auto& [key, value] : term.map_entries()) {
    auto replica = ref_of(key);
    auto clock = clock_of(value);
    if (!replica || !clock) return std::nullopt;
    context.emplace(*replica, *clock);
  }
  return context;
}

// %{__struct__: MapSet, map: %{tag => []}, version: 2}, every tag of
// `replica`.
std::optional<Cloud> cloud_of(const Term& term, const ReplicaRef& replica) {
  const Atoms& a = atoms();
  if (!term.is_map() || term.map_entries().size() != 3) return std::nullopt;
  const Term* name = term.find(a.struct_key);
  const Term* map = term.find(a.map);
  const Term* version = term.find(a.version);
  if (!name || *name != a.mapset_module || !map || !map->is_map() || !version ||
      !version->is_integer() || version->as_integer() != kMapSetVersion) {
    return std::nullopt;
  }
  Cloud cloud;
  for (const auto& [key, value] : map->map_entries()) {
    auto tag = tag_of(key);
    if (!tag || tag->replica != replica || !value.is_nil()) return std::nullopt;
    cloud.insert(cloud.end(), tag->clock);
  }
  return cloud;
}

WireResult<Clouds> clouds_of(const Term& term) {
  if (!term.is_map()) return error(WireErrc::kBadClouds, "clouds", term);
  Clouds clouds;
  for (const auto& [key, value] : term.map_entries()) {
    auto replica = ref_of(key);
    if (!replica) return error(WireErrc::kBadClouds, "cloud replica", key);
    auto cloud = cloud_of(value, *replica);
    if (!cloud) return error(WireErrc::kBadClouds, "cloud of " + replica->to_string(), value);
    clouds.emplace(*replica, std::move(*cloud));
  }
  return clouds;
}

WireResult<Values> values_of(const Term& term) {
  if (!term.is_map()) return error(WireErrc::kBadValues, "values", term);
  Values values;
  values.reserve(term.map_entries().size());
  for (const auto& [key, value] : term.map_entries()) {
    auto tag = tag_of(key);
    if (!tag) return error(WireErrc::kBadTag, "value tag", key);
    if (!value.is_tuple(4) || !value[0].is_pid() || !value[3].is_map()) {
      return error(WireErrc::kBadValues, "value of " + tag->to_string(), value);
    }
    values.emplace(*tag, PresenceValue{value[0], value[1], value[2], value[3]});
  }
  return values;
}

WireResult<Replicas> replicas_of(const Term& term) {
  const Atoms& a = atoms();
  if (!term.is_map()) return error(WireErrc::kBadReplicas, "replicas", term);
  Replicas replicas;
  for (const auto& [key, value] : term.map_entries()) {
    auto replica = ref_of(key);
    if (!replica || (value != a.up && value != a.down)) {
      return error(WireErrc::kBadReplicas, "replicas", term);
    }
    replicas.emplace(*replica, value == a.up ? ReplicaStatus::kUp : ReplicaStatus::kDown);
  }
  return replicas;
}

WireResult<Range> range_of(const Term& term) {
  if (!term.is_tuple(2)) return error(WireErrc::kBadRange, "range", term);
  auto start = context_of(term[0]);
  auto end = context_of(term[1]);
  if (!start || !end) return error(WireErrc::kBadRange, "range", term);
  return Range{std::move(*start), std::move(*end)};
}

// The nine fields of a Phoenix.Tracker.State struct, checked for presence
// and name only.
struct StructFields {
  const Term* replica;
  const Term* context;
  const Term* clouds;
  const Term* values;
  const Term* pids;
  const Term* mode;
  const Term* delta;
  const Term* replicas;
  const Term* range;
};

WireResult<StructFields> struct_fields(const Term& term) {
  const Atoms& a = atoms();
  if (!term.is_map()) return error(WireErrc::kNotAStruct, "state", term);
  const Term* name = term.find(a.struct_key);
  if (!name) return error(WireErrc::kNotAStruct, "state without __struct__", term);
  if (*name != a.state_module) return error(WireErrc::kWrongStruct, "__struct__", *name);
  struct Slot {
    const Term& field;
    const Term** value;
  };
  StructFields fields{};
  const Slot slots[] = {
      {a.replica, &fields.replica}, {a.context, &fields.context},   {a.clouds, &fields.clouds},
      {a.values, &fields.values},   {a.pids, &fields.pids},         {a.mode, &fields.mode},
      {a.delta, &fields.delta},     {a.replicas, &fields.replicas}, {a.range, &fields.range},
  };
  for (const Slot& slot : slots) {
    *slot.value = term.find(slot.field);
    if (!*slot.value) {
      return error(WireErrc::kMissingField, "missing " + slot.field.to_string(), term);
    }
  }
  if (term.map_entries().size() != std::size(slots) + 1) {
    for (const auto& entry : term.map_entries()) {
      bool known = entry.first == a.struct_key;
      for (const Slot& slot : slots) known = known || entry.first == slot.field;
      if (!known) return error(WireErrc::kUnknownField, "unknown field", entry.first);
    }
  }
  return fields;
}

// The fields a delta and a whole state share.
struct Common {
  ReplicaRef replica;
  Context context;
  Clouds clouds;
  Replicas replicas;
  Range range;
};

WireResult<Common> common_of(const StructFields& fields, const Term& mode) {
  const Atoms& a = atoms();
  if (*fields.mode != mode) return error(WireErrc::kBadMode, "mode", *fields.mode);
  if (*fields.pids != a.nil) return error(WireErrc::kBadField, "pids", *fields.pids);
  if (*fields.delta != a.unset) return error(WireErrc::kBadField, "delta", *fields.delta);
  auto replica = ref_of(*fields.replica);
  if (!replica) return error(WireErrc::kBadReplica, "replica", *fields.replica);
  auto context = context_of(*fields.context);
  if (!context) return error(WireErrc::kBadContext, "context", *fields.context);
  auto clouds = clouds_of(*fields.clouds);
  if (!clouds) return clouds.error();
  auto replicas = replicas_of(*fields.replicas);
  if (!replicas) return replicas.error();
  auto range = range_of(*fields.range);
  if (!range) return range.error();
  return Common{*replica, std::move(*context), std::move(clouds).value(),
                std::move(replicas).value(), std::move(range).value()};
}

// ---- encoding -----------------------------------------------------------

// Encodes replica refs once per message: every tag repeats its replica.
class RefCache {
 public:
  const Term& operator()(const ReplicaRef& ref) {
    auto [it, inserted] = terms_.try_emplace(ref);
    if (inserted) it->second = encode_replica_ref(ref);
    return it->second;
  }

 private:
  std::unordered_map<ReplicaRef, Term, ReplicaRefHash> terms_;
};

Term tag_term(RefCache& refs, const ReplicaRef& replica, Clock clock) {
  return Term::tuple({refs(replica), Term::integer(clock)});
}

Term context_term(RefCache& refs, const Context& context) {
  std::vector<std::pair<Term, Term>> entries;
  entries.reserve(context.size());
  for (const auto& [replica, clock] : context)
    entries.emplace_back(refs(replica), Term::integer(clock));
  return Term::map(std::move(entries));
}

Term clouds_term(RefCache& refs, const Clouds& clouds) {
  const Atoms& a = atoms();
  std::vector<std::pair<Term, Term>> entries;
  for (const auto& [replica, cloud] : clouds) {
    std::vector<std::pair<Term, Term>> tags;
    tags.reserve(cloud.size());
    for (Clock clock : cloud) tags.emplace_back(tag_term(refs, replica, clock), Term());
    Term mapset = Term::map({{a.struct_key, a.mapset_module},
                             {a.map, Term::map(std::move(tags))},
                             {a.version, Term::integer(kMapSetVersion)}});
    entries.emplace_back(refs(replica), std::move(mapset));
  }
  return Term::map(std::move(entries));
}

Term values_term(RefCache& refs, const Values& values) {
  std::vector<std::pair<Term, Term>> entries;
  entries.reserve(values.size());
  for (const auto& [tag, value] : values) {
    entries.emplace_back(tag_term(refs, tag.replica, tag.clock),
                         Term::tuple({value.pid, value.topic, value.key, value.meta}));
  }
  return Term::map(std::move(entries));
}

Term replicas_term(RefCache& refs, const Replicas& replicas) {
  const Atoms& a = atoms();
  std::vector<std::pair<Term, Term>> entries;
  for (const auto& [replica, status] : replicas) {
    entries.emplace_back(refs(replica), status == ReplicaStatus::kUp ? a.up : a.down);
  }
  return Term::map(std::move(entries));
}

Term struct_term(RefCache& refs, const ReplicaRef& replica, const Context& context,
                 const Clouds& clouds, Term values, const Term& mode, const Replicas& replicas,
                 const Range& range) {
  const Atoms& a = atoms();
  return Term::map({
      {a.struct_key, a.state_module},
      {a.replica, refs(replica)},
      {a.context, context_term(refs, context)},
      {a.clouds, clouds_term(refs, clouds)},
      {a.values, std::move(values)},
      {a.pids, a.nil},
      {a.mode, mode},
      {a.delta, a.unset},
      {a.replicas, replicas_term(refs, replicas)},
      {a.range, Term::tuple({context_term(refs, range.start), context_term(refs, range.end)})},
  });
}

}  // namespace

const char* to_string(WireErrc code) {
  switch (code) {
    case WireErrc::kNotAStruct:
      return "not a tracker state";
    case WireErrc::kWrongStruct:
      return "wrong struct";
    case WireErrc::kMissingField:
      return "missing field";
    case WireErrc::kUnknownField:
      return "unknown field";
    case WireErrc::kBadReplica:
      return "bad replica";
    case WireErrc::kBadContext:
      return "bad context";
    case WireErrc::kBadClouds:
      return "bad clouds";
    case WireErrc::kBadValues:
      return "bad values";
    case WireErrc::kBadTag:
      return "bad tag";
    case WireErrc::kBadField:
      return "bad field";
    case WireErrc::kBadMode:
      return "bad mode";
    case WireErrc::kBadReplicas:
      return "bad replicas";
    case WireErrc::kBadRange:
      return "bad range";
  }
  return "unknown wire error";
}

std::string WireError::message() const {
  return std::string(to_string(code)) + ": " + detail;
}

Term encode_replica_ref(const ReplicaRef& ref) {
  return Term::tuple({Term::atom(ref.node), Term::integer(ref.vsn)});
}

WireResult<ReplicaRef> decode_replica_ref(const Term& term) {
  auto ref = ref_of(term);
  if (!ref) return error(WireErrc::kBadReplica, "replica", term);
  return *ref;
}

Term encode_tag(const Tag& tag) {
  return Term::tuple({encode_replica_ref(tag.replica), Term::integer(tag.clock)});
}

WireResult<Tag> decode_tag(const Term& term) {
  auto tag = tag_of(term);
  if (!tag) return error(WireErrc::kBadTag, "tag", term);
  return *tag;
}

Term encode_context(const Context& context) {
  RefCache refs;
  return context_term(refs, context);
}

WireResult<Context> decode_context(const Term& term) {
  auto context = context_of(term);
  if (!context) return error(WireErrc::kBadContext, "context", term);
  return std::move(*context);
}

Term encode_replica_clock(const ReplicaClock& clock) {
  RefCache refs;
  return Term::tuple({refs(clock.replica), context_term(refs, clock.context)});
}

WireResult<ReplicaClock> decode_replica_clock(const Term& term) {
  if (!term.is_tuple(2)) return error(WireErrc::kBadContext, "replica clock", term);
  auto replica = ref_of(term[0]);
  if (!replica) return error(WireErrc::kBadReplica, "replica clock", term[0]);
  auto context = context_of(term[1]);
  if (!context) return error(WireErrc::kBadContext, "replica clock", term[1]);
  return ReplicaClock{*replica, std::move(*context)};
}

Term encode_delta(const Delta& delta) {
  RefCache refs;
  return struct_term(refs, delta.replica, delta.context, delta.clouds,
                     values_term(refs, delta.values), atoms().delta, delta.replicas, delta.range);
}

WireResult<Delta> decode_delta(const Term& term) {
  auto fields = struct_fields(term);
  if (!fields) return fields.error();
  auto common = common_of(fields.value(), atoms().delta);
  if (!common) return common.error();
  auto values = values_of(*fields.value().values);
  if (!values) return values.error();
  Common c = std::move(common).value();
  return Delta{c.replica,
               std::move(c.context),
               std::move(c.clouds),
               std::move(values).value(),
               std::move(c.replicas),
               std::move(c.range)};
}

Term encode_whole_state(const WholeState& state) {
  RefCache refs;
  Term values = values_term(refs, state.values);
  return Term::tuple({struct_term(refs, state.replica, state.context, state.clouds, atoms().nil,
                                  atoms().normal, state.replicas, state.range),
                      std::move(values)});
}

WireResult<WholeState> decode_whole_state(const Term& term) {
  if (!term.is_tuple(2)) return error(WireErrc::kNotAStruct, "whole state", term);
  auto fields = struct_fields(term[0]);
  if (!fields) return fields.error();
  if (*fields.value().values != atoms().nil) {
    return error(WireErrc::kBadField, "values of a whole state", *fields.value().values);
  }
  auto common = common_of(fields.value(), atoms().normal);
  if (!common) return common.error();
  auto values = values_of(term[1]);
  if (!values) return values.error();
  Common c = std::move(common).value();
  return WholeState{c.replica,           std::move(c.context),
                    std::move(c.clouds), std::move(c.replicas),
                    std::move(c.range),  std::move(values).value()};
}

Term encode_extracted(const Extracted& extracted) {
  if (const Delta* delta = std::get_if<Delta>(&extracted)) return encode_delta(*delta);
  return encode_whole_state(std::get<WholeState>(extracted));
}

WireResult<Extracted> decode_extracted(const Term& term) {
  if (term.is_tuple()) {
    auto whole = decode_whole_state(term);
    if (!whole) return whole.error();
    return Extracted(std::move(whole).value());
  }
  auto delta = decode_delta(term);
  if (!delta) return delta.error();
  return Extracted(std::move(delta).value());
}

}  // namespace presence
