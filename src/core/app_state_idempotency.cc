// The stored answers of idempotency keys (app_state_idempotency.h).
#include "core/app_state_idempotency.h"

#include "absl/hash/hash.h"

namespace atrium::core {
namespace {

void PutLength(std::string* out, size_t length) {
  out->push_back(static_cast<char>(length & 0xff));
  out->push_back(static_cast<char>((length >> 8) & 0xff));
}

size_t GetLength(const std::string& packed, size_t at) {
  return static_cast<size_t>(static_cast<unsigned char>(packed[at])) |
         (static_cast<size_t>(static_cast<unsigned char>(packed[at + 1])) << 8);
}

}  // namespace

IdempotencyRecords::IdempotencyRecords()
    : records_(std::make_unique<Records>()), index_(0, Hash{records_.get()}, Eq{records_.get()}) {}
IdempotencyRecords::IdempotencyRecords(IdempotencyRecords&&) noexcept = default;
IdempotencyRecords& IdempotencyRecords::operator=(IdempotencyRecords&&) noexcept = default;
IdempotencyRecords::~IdempotencyRecords() = default;

std::string_view IdempotencyRecords::Prefix(const std::string& packed) {
  const size_t token = GetLength(packed, 0);
  const size_t key = GetLength(packed, 2 + token);
  return std::string_view(packed).substr(0, 4 + token + key);
}

std::string_view IdempotencyRecords::Answer(const std::string& packed) {
  return std::string_view(packed).substr(Prefix(packed).size());
}

std::string IdempotencyRecords::MakePrefix(std::string_view token, std::string_view key) {
  std::string prefix;
  prefix.reserve(4 + token.size() + key.size());
  PutLength(&prefix, token.size());
  prefix.append(token);
  PutLength(&prefix, key.size());
  prefix.append(key);
  return prefix;
}

size_t IdempotencyRecords::Hash::operator()(std::string_view prefix) const {
  return absl::HashOf(prefix);
}

size_t IdempotencyRecords::Hash::operator()(uint64_t seq) const {
  return (*this)(Prefix(records->items[seq - records->first_seq].packed));
}

std::string_view IdempotencyRecords::Eq::PrefixOf(uint64_t seq) const {
  return Prefix(records->items[seq - records->first_seq].packed);
}

bool IdempotencyRecords::Add(int64_t at_us, std::string_view token, std::string_view key,
                             std::string_view answer) {
  if (token.size() > kPartBytesMax || key.size() > kPartBytesMax) return false;
  std::string packed = MakePrefix(token, key);
  if (index_.contains(std::string_view(packed))) return false;
  packed.append(answer);
  packed.shrink_to_fit();
  Records& records = *records_;
  records.items.push_back(Record{at_us, std::move(packed)});
  index_.insert(records.first_seq + records.items.size() - 1);
  return true;
}

std::optional<std::string_view> IdempotencyRecords::Find(std::string_view token,
                                                         std::string_view key) const {
  if (token.size() > kPartBytesMax || key.size() > kPartBytesMax) return std::nullopt;
  const std::string prefix = MakePrefix(token, key);
  const auto found = index_.find(std::string_view(prefix));
  if (found == index_.end()) return std::nullopt;
  return Answer(records_->items[*found - records_->first_seq].packed);
}

void IdempotencyRecords::DropOlderThan(int64_t before_us, size_t max_records) {
  Records& records = *records_;
  while (!records.items.empty() &&
         (records.items.front().at_us < before_us || records.items.size() > max_records)) {
    index_.erase(records.first_seq);
    records.items.pop_front();
    ++records.first_seq;
  }
}

size_t IdempotencyRecords::size() const { return records_->items.size(); }

void IdempotencyRecords::ForEach(
    const std::function<void(int64_t, std::string_view, std::string_view, std::string_view)>& visit)
    const {
  for (const Record& record : records_->items) {
    const size_t token = GetLength(record.packed, 0);
    const size_t key = GetLength(record.packed, 2 + token);
    const std::string_view packed(record.packed);
    visit(record.at_us, packed.substr(2, token), packed.substr(4 + token, key),
          Answer(record.packed));
  }
}

}  // namespace atrium::core
