#include "crdt/values.h"

#include <cassert>
#include <stdexcept>

namespace presence {

Values::Values(std::initializer_list<value_type> entries) {
  reserve(entries.size());
  for (const auto& [tag, value] : entries) emplace(tag, value);
}

void Values::reserve(std::size_t count) {
  entries_.reserve(count);
  index_.reserve(count, [this](Index i) { return entries_[i].first.hash(); });
}

Values::Index Values::index_of(const Tag& tag, std::size_t hash) const {
  return index_.find(hash, [&](Index i) { return entries_[i].first == tag; });
}

const PresenceValue* Values::get(const Tag& tag) const {
  const Index i = index_of(tag, tag.hash());
  return i == kNone ? nullptr : &entries_[i].second;
}

const PresenceValue& Values::at(const Tag& tag) const {
  const PresenceValue* value = get(tag);
  if (value == nullptr) throw std::out_of_range("no value of tag " + tag.to_string());
  return *value;
}

PresenceValue& Values::operator[](const Tag& tag) {
  const std::size_t hash = tag.hash();
  const Index i = index_of(tag, hash);
  if (i != kNone) return entries_[i].second;
  append(tag, hash, {});
  return entries_.back().second;
}

bool Values::emplace(const Tag& tag, PresenceValue value) {
  const std::size_t hash = tag.hash();
  if (index_of(tag, hash) != kNone) return false;
  append(tag, hash, std::move(value));
  return true;
}

void Values::emplace_new(const Tag& tag, PresenceValue value) {
  assert(!contains(tag));
  append(tag, tag.hash(), std::move(value));
}

std::size_t Values::erase(const Tag& tag) {
  const Index i = index_of(tag, tag.hash());
  if (i == kNone) return 0;
  remove_at(i);
  return 1;
}

void Values::append(const Tag& tag, std::size_t hash, PresenceValue value) {
  if (entries_.size() > IdTable::kMaxId) throw std::length_error("too many values");
  index_.insert(hash, static_cast<Index>(entries_.size()),
                [this](Index i) { return entries_[i].first.hash(); });
  entries_.emplace_back(tag, std::move(value));
}

void Values::remove_at(std::size_t i) {
  const auto last = static_cast<Index>(entries_.size() - 1);
  index_.erase(entries_[i].first.hash(), static_cast<Index>(i));
  if (i != last) {
    index_.replace(entries_[last].first.hash(), last, static_cast<Index>(i));
    entries_[i] = std::move(entries_[last]);
  }
  entries_.pop_back();
}

bool operator==(const Values& a, const Values& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [tag, value] : a) {
    const PresenceValue* other = b.get(tag);
    if (other == nullptr || !(*other == value)) return false;
  }
  return true;
}

}  // namespace presence
