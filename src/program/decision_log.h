// DecisionLog: the public, hash-chained record of every program decision event (call
// opened or closed, conflict recorded, reviewers assigned, review submitted, decision
// drafted or committed, grant created, obligation state change, sanction).
//
// An entry holds only what the public may see: scores, ranks, amounts, rationale codes,
// institutions and topics; never reviewer identities or review text (ProgramState
// decides what goes in). Each entry's hash is SHA-256 over the previous entry's hash
// and the entry's canonical JSON, so changing, inserting or removing an entry breaks
// the chain from that entry on. Publishing the head hash anchors the whole log.
//
// The exported form is JSON Lines: one canonical JSON object per line (keys sorted, no
// spaces): {"at_us":..,"data":{..},"hash":"..","prev":"..","seq":N,"type":".."}.
// VerifyLog recomputes the chain from that text and names the first broken entry; any
// changed byte makes its line invalid, non-canonical or mismatched with its hash.
//
// Sealed entries. While a call is under review its proposals and reviews enter the log
// only as commitments: an entry whose data holds an opaque "ref" and a "commitment",
// SealCommitment(salt, content), with a secret per-seal salt. When the decision is
// committed each seal is revealed by a `proposal_revealed` or `review_revealed` entry:
// {"call", "ref", "committed_in": seq of the latest commitment of that ref, "salt",
// "content"}. VerifyLog checks every reveal against that commitment, and that every
// commitment of a decided call is revealed (docs/program.md: what is public when).
//
//   DecisionLog log;
//   log.Append(now_us, "call_opened", {{"call", "2026-r1"}});
//   LogVerification v = VerifyLog(log.Export());   // v.ok, v.entries == 1
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace atrium::program {

// An entry's data as canonical JSON text (nlohmann's dump: keys sorted, no spaces), the
// form its hash covers. Kept as text, not as a JSON tree: a program's log holds an entry
// per decision event for years, and a tree costs several times the memory and is parsed
// again at every restart. Reading parses it.
class LogData {
 public:
  LogData() = default;
  explicit LogData(const nlohmann::json& value) : text_(value.dump()) {}
  // Text that is already canonical JSON (checked by whoever read it: the snapshot decoder).
  static LogData FromCanonical(std::string text) {
    LogData data;
    data.text_ = std::move(text);
    return data;
  }
  const std::string& text() const { return text_; }
  nlohmann::json parsed() const;
  // parsed()'s member `key` (null when absent or when the data is not an object).
  nlohmann::json operator[](const char* key) const;
  bool contains(const char* key) const;
  bool is_object() const { return !text_.empty() && text_.front() == '{'; }

 private:
  std::string text_ = "null";
};
// JSON output (nlohmann's to_json, found by argument-dependent lookup): the parsed data.
void to_json(nlohmann::json& json, const LogData& data);

struct LogEntry {
  int64_t seq = 0;  // 1-based
  int64_t at_us = 0;
  std::string type;
  LogData data;
  std::string prev;  // hex SHA-256 of the previous entry; 64 zeros for the first
  std::string hash;  // hex SHA-256 of this entry
};

class ProgramState;

class DecisionLog {
 public:
  // Bounds one entry's canonical size; larger payloads are a programmer error.
  static constexpr size_t kEntryBytesMax = 1 << 20;

  const LogEntry& Append(int64_t at_us, std::string type, const nlohmann::json& data);
  const std::vector<LogEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  // The hash of the last entry (the genesis hash when empty).
  std::string head() const;
  // JSON Lines, one entry per line, each ending in '\n'.
  std::string Export() const;

 private:
  friend class ProgramState;  // its snapshot codec (program_codec.cc)
  std::vector<LogEntry> entries_;
};

struct LogVerification {
  bool ok = false;
  int64_t entries = 0;       // entries that verified
  int64_t first_broken = 0;  // 1-based entry (line) number of the first broken entry
  std::string reason;
  std::string head;  // hash of the last verified entry
};

// Recomputes the chain of an exported log. Never throws.
LogVerification VerifyLog(std::string_view exported);

// The commitment to a sealed content: hex SHA-256 of (salt hex, '\n', canonical JSON).
std::string SealCommitment(std::string_view salt_hex, const nlohmann::json& content);

// The genesis "previous hash": 64 zeros.
std::string GenesisHash();
// Lower-case hex SHA-256 of bytes.
std::string Sha256Hex(std::string_view bytes);

}  // namespace atrium::program
