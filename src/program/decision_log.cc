#include "program/decision_log.h"

#include <openssl/evp.h>

#include "base/assert.h"

namespace atrium::program {
namespace {

nlohmann::json Body(const LogEntry& entry) {
  return nlohmann::json{{"seq", entry.seq},
                        {"at_us", entry.at_us},
                        {"type", entry.type},
                        {"data", entry.data},
                        {"prev", entry.prev}};
}

std::string HashBody(const std::string& prev, const std::string& canonical_body) {
  return Sha256Hex(prev + "\n" + canonical_body);
}

std::string Line(const LogEntry& entry) {
  nlohmann::json full = Body(entry);
  full["hash"] = entry.hash;
  return full.dump();
}

}  // namespace

std::string GenesisHash() { return std::string(64, '0'); }

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const int ok = EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  ATRIUM_CHECK(ok == 1 && length == 32, "SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned int index = 0; index < length; ++index) {
    out.push_back(kHex[digest[index] >> 4]);
    out.push_back(kHex[digest[index] & 0xF]);
  }
  return out;
}

const LogEntry& DecisionLog::Append(int64_t at_us, std::string type, nlohmann::json data) {
  LogEntry entry;
  entry.seq = static_cast<int64_t>(entries_.size()) + 1;
  entry.at_us = at_us;
  entry.type = std::move(type);
  entry.data = std::move(data);
  entry.prev = head();
  const std::string body = Body(entry).dump();
  ATRIUM_ASSERT(body.size() <= kEntryBytesMax, "log entry too large");
  entry.hash = HashBody(entry.prev, body);
  entries_.push_back(std::move(entry));
  return entries_.back();
}

std::string DecisionLog::head() const {
  return entries_.empty() ? GenesisHash() : entries_.back().hash;
}

std::string DecisionLog::Export() const {
  std::string out;
  for (const LogEntry& entry : entries_) {
    out += Line(entry);
    out += '\n';
  }
  return out;
}

LogVerification VerifyLog(std::string_view exported) {
  LogVerification result;
  std::string prev = GenesisHash();
  int64_t line_number = 0;
  const auto broken = [&](std::string reason) {
    result.ok = false;
    result.first_broken = line_number;
    result.reason = std::move(reason);
    result.head = prev;
    return result;
  };
  size_t position = 0;
  while (position < exported.size()) {
    ++line_number;
    const size_t end = exported.find('\n', position);
    if (end == std::string_view::npos) return broken("the last line does not end in a newline");
    const std::string_view line = exported.substr(position, end - position);
    position = end + 1;
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) return broken("not a JSON object");
    LogEntry entry;
    try {
      if (parsed.size() != 6) return broken("unexpected or missing fields");
      entry.seq = parsed.at("seq").get<int64_t>();
      entry.at_us = parsed.at("at_us").get<int64_t>();
      entry.type = parsed.at("type").get<std::string>();
      entry.data = parsed.at("data");
      entry.prev = parsed.at("prev").get<std::string>();
      entry.hash = parsed.at("hash").get<std::string>();
      if (parsed.dump() != line) return broken("not in canonical form");
    } catch (const nlohmann::json::exception& error) {
      return broken(std::string("malformed entry: ") + error.what());
    }
    if (entry.seq != line_number) return broken("sequence number out of order");
    if (entry.prev != prev) return broken("previous-hash link does not match");
    if (HashBody(entry.prev, Body(entry).dump()) != entry.hash) {
      return broken("hash does not match the entry's content");
    }
    prev = entry.hash;
    result.entries = line_number;
  }
  result.ok = true;
  result.head = prev;
  return result;
}

}  // namespace atrium::program
