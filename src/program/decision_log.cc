#include "program/decision_log.h"

#include <openssl/evp.h>

#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/credits.h"
#include "base/nesting.h"

namespace atrium::program {
namespace {

// The entry's canonical JSON without its hash, written directly (the data is already
// canonical text): keys in nlohmann's sorted order, strings escaped by nlohmann. `hash`,
// when given, is added in its sorted place (the exported line).
std::string Canonical(const LogEntry& entry, const std::string* hash) {
  std::string out = "{\"at_us\":" + std::to_string(entry.at_us) + ",\"data\":";
  out += entry.data.text();
  if (hash != nullptr) out += ",\"hash\":" + nlohmann::json(*hash).dump();
  out += ",\"prev\":" + nlohmann::json(entry.prev).dump();
  out += ",\"seq\":" + std::to_string(entry.seq);
  out += ",\"type\":" + nlohmann::json(entry.type).dump() + "}";
  return out;
}

std::string HashBody(const std::string& prev, const std::string& canonical_body) {
  return Sha256Hex(prev + "\n" + canonical_body);
}

std::string Line(const LogEntry& entry) { return Canonical(entry, &entry.hash); }

// One commitment seen in the log, by its ref.
struct SealSeen {
  int64_t seq = 0;  // the latest commitment entry of the ref
  std::string call;
  std::string kind;  // "proposal" or "review"
  std::string commitment;
  bool revealed = false;
};

std::string SealKind(const std::string& type) {
  if (type == "proposal_submitted" || type == "proposal_edited") return "proposal";
  if (type == "review_submitted") return "review";
  return "";
}

// Follows commitments and reveals; returns an empty string or why the entry is wrong.
class SealChecker {
 public:
  std::string Check(const LogEntry& entry, const nlohmann::json& data) {
    if (!data.is_object()) return "";
    const std::string kind = SealKind(entry.type);
    if (!kind.empty() && data.contains("commitment")) {
      if (!data.contains("ref") || !data["ref"].is_string() || !data["commitment"].is_string() ||
          !data.contains("call") || !data["call"].is_string()) {
        return "a commitment without its ref or call";
      }
      SealSeen& seen = seals_[data["ref"].get<std::string>()];
      if (seen.revealed) return "a commitment to a ref already revealed";
      if (!seen.kind.empty() && (seen.kind != kind || seen.call != data["call"])) {
        return "a commitment that reuses another seal's ref";
      }
      seen = SealSeen{.seq = entry.seq,
                      .call = data["call"].get<std::string>(),
                      .kind = kind,
                      .commitment = data["commitment"].get<std::string>()};
      return "";
    }
    if (entry.type == "decision_committed" && data.contains("call") && data["call"].is_string()) {
      decided_.push_back({data["call"].get<std::string>(), entry.seq});
      return "";
    }
    const bool proposal = entry.type == "proposal_revealed";
    if (!proposal && entry.type != "review_revealed") return "";
    if (!data.contains("ref") || !data["ref"].is_string() || !data.contains("salt") ||
        !data["salt"].is_string() || !data.contains("committed_in") ||
        !data["committed_in"].is_number_integer() || !data.contains("content")) {
      return "a reveal without its ref, salt, commitment entry or content";
    }
    const std::string ref = data["ref"].get<std::string>();
    const auto found = seals_.find(ref);
    if (found == seals_.end()) return "reveal of " + ref + " has no commitment before it";
    SealSeen& seen = found->second;
    if (seen.kind != (proposal ? "proposal" : "review")) {
      return "reveal of " + ref + " is of another kind than its commitment";
    }
    if (data["committed_in"].get<int64_t>() != seen.seq) {
      return "reveal of " + ref + " names entry " +
             std::to_string(data["committed_in"].get<int64_t>()) +
             ", not its latest commitment (entry " + std::to_string(seen.seq) + ")";
    }
    if (seen.revealed) return "reveal of " + ref + " is repeated";
    if (SealCommitment(data["salt"].get<std::string>(), data["content"]) != seen.commitment) {
      return "reveal of " + ref + " does not match its commitment in entry " +
             std::to_string(seen.seq) + " (the revealed content or salt was altered)";
    }
    seen.revealed = true;
    return "";
  }

  // After the last entry: every commitment of a decided call must have been revealed.
  std::pair<int64_t, std::string> Unrevealed() const {
    for (const auto& [ref, seen] : seals_) {
      if (seen.revealed) continue;
      for (const auto& [call, seq] : decided_) {
        if (call == seen.call && seq > seen.seq) {
          std::string why = "the commitment of ";
          why.append(ref).append(" (call ").append(call);
          why += ") is never revealed although the call is decided";
          return {seen.seq, std::move(why)};
        }
      }
    }
    return {0, ""};
  }

 private:
  std::map<std::string, SealSeen> seals_;
  std::vector<std::pair<std::string, int64_t>> decided_;
};

// Sponsor overrides (docs/governance.md): each override_recorded while the call is under
// review is published by exactly one override_committed of the same id, kind and reason
// after its call's decision_committed, which counts them.
class OverrideChecker {
 public:
  std::string Check(const LogEntry& entry, const nlohmann::json& data) {
    if (!data.is_object()) return "";
    const auto text = [&](const char* key) {
      const auto found = data.find(key);
      return found != data.end() && found->is_string() ? found->get<std::string>() : std::string();
    };
    if (entry.type == "override_recorded") {
      const std::string id = text("override");
      if (id.empty() || text("call").empty()) return "an override without its id or call";
      if (overrides_.contains(id)) return "override " + id + " is recorded twice";
      overrides_[id] = {text("call"), text("kind"), text("reason"), entry.seq, false};
      return "";
    }
    if (entry.type == "decision_committed") {
      const std::string call = text("call");
      int64_t recorded = 0;
      for (const auto& [id, seen] : overrides_) recorded += seen.call == call ? 1 : 0;
      const auto count = data.find("overrides");
      const int64_t stated =
          count != data.end() && count->is_number_integer() ? count->get<int64_t>() : 0;
      if (stated != recorded) {
        return "the decision of " + call + " states " + std::to_string(stated) +
               " override(s) but " + std::to_string(recorded) + " were recorded";
      }
      committed_[call] = entry.seq;
      return "";
    }
    if (entry.type == "override_committed") {
      const auto found = overrides_.find(text("override"));
      if (found == overrides_.end() || found->second.published ||
          found->second.call != text("call") || found->second.kind != text("kind") ||
          found->second.reason != text("reason") || !committed_.contains(text("call"))) {
        return "override_committed " + text("override") +
               " does not match an override recorded for its committed decision";
      }
      found->second.published = true;
    }
    return "";
  }

  std::pair<int64_t, std::string> Unpublished() const {
    for (const auto& [id, seen] : overrides_) {
      if (!seen.published && committed_.contains(seen.call)) {
        return {seen.seq, "override " + id + " is never published although its call is decided"};
      }
    }
    return {0, ""};
  }

 private:
  struct Seen {
    std::string call;
    std::string kind;
    std::string reason;
    int64_t seq = 0;
    bool published = false;
  };
  std::map<std::string, Seen> overrides_;
  std::map<std::string, int64_t> committed_;
};

// Appeals (docs/governance.md): an appeal_filed names a proposal its committed decision
// declined, once; an appeal_decided decides a filed appeal, once, with its ground; a grant
// created from the appeals reserve is claimed by exactly one upheld appeal of the same
// proposal and amount, and what the reserve funds never exceeds what the program set
// aside in its program_created entry.
class AppealChecker {
 public:
  std::string Check(const LogEntry& entry, const nlohmann::json& data) {
    if (!data.is_object()) return "";
    const auto text = [&](const char* key) {
      const auto found = data.find(key);
      return found != data.end() && found->is_string() ? found->get<std::string>() : std::string();
    };
    const auto credits = [&](const char* key) -> std::optional<Credits> {
      const Result<Credits> parsed = Credits::Parse(text(key));
      if (!parsed.ok() || parsed->is_negative()) return std::nullopt;
      return *parsed;
    };
    if (entry.type == "program_created") {
      const auto governance = data.find("governance");
      if (governance != data.end() && governance->is_object() && governance->contains("appeals") &&
          (*governance)["appeals"].is_object()) {
        const nlohmann::json& appeals = (*governance)["appeals"];
        const auto found = appeals.find("reserve");
        const Result<Credits> reserve = found != appeals.end() && found->is_string()
                                            ? Credits::Parse(found->get<std::string>())
                                            : Result<Credits>(Credits::Zero());
        if (!reserve.ok() || reserve->is_negative()) return "the appeals reserve is not an amount";
        reserve_ = *reserve;
      }
      return "";
    }
    if (entry.type == "decision_committed") {
      committed_.insert(text("call"));
      return "";
    }
    if (entry.type == "proposal_decided") {
      const std::optional<Credits> awarded = credits("awarded");
      declined_[text("proposal")] = awarded.has_value() && awarded->is_zero();
      return "";
    }
    if (entry.type == "appeal_filed") {
      const std::string id = text("appeal");
      const std::string proposal = text("proposal");
      const auto declined = declined_.find(proposal);
      if (id != "A-" + proposal || appeals_.contains(id) || !committed_.contains(text("call")) ||
          declined == declined_.end() || !declined->second) {
        return "appeal_filed " + id + " does not appeal a proposal declined by a committed " +
               "decision, once";
      }
      appeals_[id] = {proposal, text("call"), text("ground"), false};
      return "";
    }
    if (entry.type == "grant_created" && text("from") == "appeals_reserve") {
      const std::optional<Credits> amount = credits("amount");
      const auto appeal = appeals_.find("A-" + text("proposal"));
      if (!amount.has_value() || appeal == appeals_.end() || appeal->second.decided) {
        return "grant " + text("grant") + " is funded from the appeals reserve without an appeal";
      }
      const Result<Credits> total = funded_.CheckedAdd(*amount);
      if (!total.ok()) return "the appeals reserve's grants overflow";
      funded_ = *total;
      if (funded_ > reserve_) {
        return "the appeals reserve funds " + funded_.ToString() + ", more than the " +
               reserve_.ToString() + " set aside";
      }
      reserve_grants_[text("grant")] = {text("proposal"), *amount, entry.seq, false};
      return "";
    }
    if (entry.type == "appeal_decided") {
      const std::string id = text("appeal");
      const std::string outcome = text("outcome");
      const auto appeal = appeals_.find(id);
      if (appeal == appeals_.end() || appeal->second.decided ||
          appeal->second.proposal != text("proposal") || appeal->second.call != text("call") ||
          appeal->second.ground != text("ground") ||
          (outcome != "upheld" && outcome != "rejected")) {
        return "appeal_decided " + id + " does not decide a filed appeal, once";
      }
      appeal->second.decided = true;
      if (data.contains("grant")) {
        const auto grant = reserve_grants_.find(text("grant"));
        const std::optional<Credits> funded = credits("funded");
        if (outcome != "upheld" || grant == reserve_grants_.end() || grant->second.claimed ||
            grant->second.proposal != appeal->second.proposal || !funded.has_value() ||
            *funded != grant->second.amount) {
          return "appeal_decided " + id + " names a grant the reserve did not fund for it";
        }
        grant->second.claimed = true;
      }
      return "";
    }
    return "";
  }

  std::pair<int64_t, std::string> Unclaimed() const {
    for (const auto& [id, grant] : reserve_grants_) {
      if (!grant.claimed) {
        return {grant.seq, "grant " + id + " is funded from the appeals reserve by no appeal"};
      }
    }
    return {0, ""};
  }

 private:
  struct Filed {
    std::string proposal;
    std::string call;
    std::string ground;
    bool decided = false;
  };
  struct ReserveGrant {
    std::string proposal;
    Credits amount;
    int64_t seq = 0;
    bool claimed = false;
  };
  Credits reserve_;
  Credits funded_;
  std::set<std::string> committed_;
  std::map<std::string, bool> declined_;  // proposal -> declined by its decision
  std::map<std::string, Filed> appeals_;
  std::map<std::string, ReserveGrant> reserve_grants_;
};

}  // namespace

std::string SealCommitment(std::string_view salt_hex, const nlohmann::json& content) {
  std::string text(salt_hex);
  text += '\n';
  text += content.dump();
  return Sha256Hex(text);
}

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

nlohmann::json LogData::parsed() const {
  nlohmann::json value = nlohmann::json::parse(text_, nullptr, /*allow_exceptions=*/false);
  return value.is_discarded() ? nlohmann::json() : value;
}

nlohmann::json LogData::operator[](const char* key) const {
  if (!is_object()) return nullptr;
  nlohmann::json value = parsed();
  const auto found = value.find(key);
  return found == value.end() ? nlohmann::json() : std::move(*found);
}

bool LogData::contains(const char* key) const { return is_object() && parsed().contains(key); }

void to_json(nlohmann::json& json, const LogData& data) { json = data.parsed(); }

const LogEntry& DecisionLog::Append(int64_t at_us, std::string type, const nlohmann::json& data) {
  LogEntry entry;
  entry.seq = static_cast<int64_t>(entries_.size()) + 1;
  entry.at_us = at_us;
  entry.type = std::move(type);
  entry.data = LogData(data);
  entry.prev = head();
  const std::string body = Canonical(entry, nullptr);
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
  SealChecker seals;
  OverrideChecker overrides;
  AppealChecker appeals;
  size_t position = 0;
  while (position < exported.size()) {
    ++line_number;
    const size_t end = exported.find('\n', position);
    if (end == std::string_view::npos) return broken("the last line does not end in a newline");
    const std::string_view line = exported.substr(position, end - position);
    position = end + 1;
    // Checked before parsing: dumping a deeply nested entry would overflow the stack.
    if (!JsonDepthWithin(line, kJsonDepthMax)) return broken("nested too deeply");
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) return broken("not a JSON object");
    LogEntry entry;
    try {
      if (parsed.size() != 6) return broken("unexpected or missing fields");
      // nlohmann converts any number to int64 without a range check (undefined for
      // 1e81; found by tests/fuzz/decision_log_fuzzer): integers only.
      if (!parsed.at("seq").is_number_integer() || !parsed.at("at_us").is_number_integer()) {
        return broken("seq and at_us must be integers");
      }
      entry.seq = parsed.at("seq").get<int64_t>();
      entry.at_us = parsed.at("at_us").get<int64_t>();
      entry.type = parsed.at("type").get<std::string>();
      entry.data = LogData(parsed.at("data"));
      entry.prev = parsed.at("prev").get<std::string>();
      entry.hash = parsed.at("hash").get<std::string>();
      if (parsed.dump() != line) return broken("not in canonical form");
    } catch (const nlohmann::json::exception& error) {
      return broken(std::string("malformed entry: ") + error.what());
    }
    if (entry.seq != line_number) return broken("sequence number out of order");
    if (entry.prev != prev) return broken("previous-hash link does not match");
    if (HashBody(entry.prev, Canonical(entry, nullptr)) != entry.hash) {
      return broken("hash does not match the entry's content");
    }
    const nlohmann::json& data = parsed.at("data");  // present: read above
    if (std::string why = seals.Check(entry, data); !why.empty()) return broken(std::move(why));
    if (std::string why = overrides.Check(entry, data); !why.empty()) return broken(std::move(why));
    if (std::string why = appeals.Check(entry, data); !why.empty()) return broken(std::move(why));
    prev = entry.hash;
    result.entries = line_number;
  }
  if (auto [seq, why] = seals.Unrevealed(); seq != 0) {
    line_number = seq;
    return broken(std::move(why));
  }
  if (auto [seq, why] = overrides.Unpublished(); seq != 0) {
    line_number = seq;
    return broken(std::move(why));
  }
  if (auto [seq, why] = appeals.Unclaimed(); seq != 0) {
    line_number = seq;
    return broken(std::move(why));
  }
  result.ok = true;
  result.head = prev;
  return result;
}

}  // namespace atrium::program
