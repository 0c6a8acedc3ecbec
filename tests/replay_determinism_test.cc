// Replay determinism: a seeded random mix of service ops (programs, people, calls,
// proposals, conflicts, reviews, decisions, grants, students, obligations, the cluster,
// jobs, nodes, ticks, tokens, idempotent retries) is applied live to a core::Core. The
// state is encoded at random points; each snapshot is decoded and the rest of the ops
// applied to it: every answer and the final state's hash (SHA-256 of Encode) must equal
// the live run's. The same ops then go through a real SQLite store and DurableCore, and
// the store is reopened from its journal alone and from its latest snapshot plus tail, and
// every snapshot the store holds is decoded and the journal after it applied ("restart
// from every snapshot"): the state's hash is the live run's every time, and every
// journaled entry still applies.
//
// ATRIUM_SEED=<n> replays a seed; ATRIUM_REPLAY_OPS=<n> sets the op count (CTest runs a
// smaller count under ASan; scripts/replay-determinism.sh runs 100,000 in release).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/core.h"
#include "journal/journal.h"
#include "journal/sha256.h"
#include "journal/sqlite_store.h"
#include "program/validate.h"

namespace atrium {
namespace {

using nlohmann::json;

constexpr int64_t kDayUs = 86'400'000'000LL;
constexpr int64_t kT0Us = 1'767'225'600'000'000LL;  // 2026-01-01

std::string Hex(const journal::Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const uint8_t byte : digest) {
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  }
  return out;
}

// Person ids are ORCID-shaped.
std::string Pid(int64_t n) { return program::OrcidFromNumber(static_cast<uint64_t>(1000 + n)); }

std::string StateHash(const core::Core& core) {
  std::string bytes;
  core.Encode(&bytes);
  return Hex(journal::Sha256Of(bytes));
}

std::string ProgramToml() {
  std::string toml = R"([program]
id = "p1"
name = "Replay program"
currency = "USD"
total_budget = 20000000
award_policy = "greedy"
topics = ["ml", "systems", "education"]
[program.prices]
trn1 = "1.34375"
h100 = "4.10"
[[program.rubric]]
name = "merit"
weight = 2
min = 1
max = 5
[[program.rubric]]
name = "need"
weight = 1
min = 1
max = 5
[program.obligations]
progress_report_months = [1]
final_report = true
paper = false
repository = false
final_grace_months = 1
freeze_when_overdue = true
[[track]]
id = "research"
name = "Research"
kind = "research"
budget = 16000000
award_cap = 400000
pi_roles = ["faculty", "postdoc"]
[[track]]
id = "edu"
name = "Courses"
kind = "education"
budget = 2000000
award_cap = 100000
pi_roles = ["faculty"]
)";
  // Calls one after another over the run's month.
  const char* calls[][6] = {{"c1", "research", "02", "05", "08", "09"},
                            {"e1", "edu", "02", "05", "08", "09"},
                            {"c2", "research", "10", "13", "16", "17"},
                            {"c3", "research", "18", "21", "24", "25"}};
  for (const auto& call : calls) {
    toml += std::string("[[call]]\nid = \"") + call[0] + "\"\ntrack = \"" + call[1] +
            "\"\nopens = 2026-01-" + call[2] + "\ncloses = 2026-01-" + call[3] +
            "\nreview_deadline = 2026-01-" + call[4] + "\ndecision = 2026-01-" + call[5] +
            "\nreviewers_per_proposal = 2\n";
  }
  return toml;
}

std::string ClusterToml() {
  std::ifstream file(std::string(ATRIUM_SOURCE_DIR) + "/examples/clusters/mixed.toml");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

struct Op {
  int64_t now_us = 0;
  std::string json;
};

std::string AnswerText(const core::CommandResult& result) {
  if (!result.app) return "none";
  const core::AppAnswer& answer = *result.app;
  std::string text = answer.status.ok() ? "ok " : std::string(ToString(answer.status.code())) + " ";
  text += answer.result.dump();
  text += answer.changed ? " changed" : "";
  text += answer.replayed ? " replayed" : "";
  return text;
}

// Draws ops from the live state (so most of them apply), applying each as it goes.
class Generator {
 public:
  Generator(uint64_t seed, size_t count) : rng_(seed), count_(count) {}

  void Run(core::Core& core, std::vector<Op>* ops, std::vector<std::string>* answers) {
    const int64_t step_max_us = std::max<int64_t>(1, 60 * kDayUs / static_cast<int64_t>(count_));
    int64_t now_us = kT0Us;
    auto apply = [&](json command) {
      if (Chance(0.15) && !command.contains("idempotency_key")) {
        command["idempotency_key"] = "k" + std::to_string(next_key_++);
        retryable_.push_back(command);
      }
      Op op{now_us, command.dump()};
      // ATRIUM_REPLAY_STRICT: a command that changed nothing (so is not journaled) must
      // leave the state's encoding as it was (slow: two encodings per op).
      const std::string before = strict_ ? StateHash(core) : std::string();
      const core::CommandResult result =
          core.Apply(core::AppCommand{.now_us = op.now_us, .json = op.json});
      if (strict_ && !result.changed) {
        EXPECT_EQ(StateHash(core), before) << "op " << ops->size() << " changed nothing, yet "
                                           << "the state differs: " << op.json;
      }
      answers->push_back(AnswerText(result));
      ops->push_back(std::move(op));
    };
    apply(TokenCreate("tok-admin", "admin", ""));
    apply({{"op", "cluster_load"}, {"actor", Admin()}, {"toml", ClusterToml()}});
    apply({{"op", "program_create"},
           {"actor", Admin()},
           {"toml", ProgramToml()},
           {"seal_secret", "0123456789abcdef0123456789abcdef-replay"}});
    while (ops->size() < count_) {
      now_us += Uniform(0, step_max_us);
      apply(Next(core));
    }
  }

 private:
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  template <class T>
  const T& Pick(const std::vector<T>& items) {
    return items[static_cast<size_t>(Uniform(0, static_cast<int64_t>(items.size()) - 1))];
  }
  static json Admin() { return {{"role", "admin"}, {"token", "tok-admin"}}; }
  json TokenCreate(const std::string& id, const std::string& role, const std::string& person) {
    return {{"op", "token_create"},
            {"actor", Admin()},
            {"token_id", id},
            {"role", role},
            {"person", person},
            {"salt", std::string(32, 'a')},
            {"hash", std::string(64, 'b')}};
  }

  json Next(const core::Core& core) {
    const core::AppState& app = core.app();
    const program::ProgramState& program = *app.FindProgram("p1");
    const std::vector<std::string> calls = {"c1", "e1", "c2", "c3"};
    const int kind = static_cast<int>(Uniform(0, 99));
    if (kind < 3 && !retryable_.empty()) return Pick(retryable_);  // a retry, same key
    if (kind < 6) {
      const int64_t n = static_cast<int64_t>(institutions_++ % 12);
      return {{"op", "institution_add"},
              {"actor", Admin()},
              {"program", "p1"},
              {"institution",
               {{"id", "I" + std::to_string(n)},
                {"name", "Inst " + std::to_string(n)},
                {"type", n % 3 == 0 ? "r2" : "r1"},
                {"country", "US"}}}};
    }
    if (kind < 11) {
      const int64_t n = static_cast<int64_t>(people_++ % 80);
      const char* roles[] = {"faculty", "postdoc", "student", "faculty"};
      return {{"op", "person_add"},
              {"actor", Admin()},
              {"program", "p1"},
              {"person",
               {{"id", Pid(n)},
                {"name", "Person " + std::to_string(n)},
                {"institution", "I" + std::to_string(Uniform(0, 11))},
                {"role", roles[n % 4]},
                {"expertise", json::array({Chance(0.5) ? "ml" : "systems"})},
                {"reviewer", n % 2 == 1}}}};
    }
    if (kind < 17) {
      const char* ops[] = {"call_open", "call_close", "call_assign", "decision_draft",
                           "decision_commit"};
      const std::string call = Pick(calls);
      if (program.grants().size() >= 3 || Chance(0.5)) {
        return {{"op", ops[Uniform(0, 4)]}, {"actor", Admin()}, {"program", "p1"}, {"call", call}};
      }
      // Fewer than three grants: half of these follow the call's life in order, so every
      // seed reaches committed decisions, grants and jobs.
      size_t& step = steps_[call];
      // A call stays open until it has a few proposals; a draft waits for a review.
      if (step == 1 && ProposalsIn(program, call) < 8) step = 0;
      if (step == 3 && program.reviews().empty()) step = 2;
      const char* op = ops[step];
      step = (step + 1) % 5;
      return {{"op", op}, {"actor", Admin()}, {"program", "p1"}, {"call", call}};
    }
    if (kind < 27) {
      const std::string call = Pick(calls);
      return {{"op", "proposal_submit"},
              {"actor", Admin()},
              {"program", "p1"},
              {"proposal",
               {{"id", "R" + std::to_string(Uniform(0, 150))},
                {"call", call},
                {"pi", Pid(Uniform(0, 79))},
                {"title", "A proposal"},
                {"abstract", "Work."},
                {"topics", json::array({"ml"})},
                {"requested", std::to_string(Uniform(1, 80) * 5000)},
                {"duration_months", 2}}}};
    }
    if (kind < 29) {
      return {{"op", "proposal_withdraw"},
              {"actor", Admin()},
              {"program", "p1"},
              {"proposal", "R" + std::to_string(Uniform(0, 150))}};
    }
    if (kind < 31) {
      return {{"op", "conflict_declare"},
              {"actor", Admin()},
              {"program", "p1"},
              {"proposal", "R" + std::to_string(Uniform(0, 150))},
              {"reviewer", Pid(Uniform(0, 79))},
              {"note", "same lab"}};
    }
    if (kind < 38 && !program.assignments().empty()) {
      const program::Assignment& assignment = Pick(program.assignments());
      return {{"op", "review_submit"},
              {"actor", {{"role", "reviewer"}, {"person", assignment.reviewer}}},
              {"program", "p1"},
              {"proposal", assignment.proposal},
              {"scores", json::array({Uniform(1, 5), Uniform(1, 5)})},
              {"comment", "ok"}};
    }
    std::vector<std::string> grants;
    for (const auto& [id, grant] : program.grants()) grants.push_back(id);
    if (kind < 42 && !grants.empty()) {
      const std::string grant = Pick(grants);
      const int which = static_cast<int>(Uniform(0, 59));
      if (which == 0) {
        return {{"op", "grant_close"}, {"actor", Admin()}, {"program", "p1"}, {"grant", grant}};
      }
      if (which < 30) {
        return {{"op", "grant_member_add"},
                {"actor", Admin()},
                {"program", "p1"},
                {"grant", grant},
                {"person", Pid(Uniform(0, 79))}};
      }
      return {{"op", "student_allocate"},
              {"actor", Admin()},
              {"program", "p1"},
              {"grant", grant},
              {"student", Pid(4 * Uniform(0, 19) + 2)},
              {"amount", std::to_string(Uniform(1, 50) * 100)}};
    }
    if (kind < 45 && !program.obligations().empty()) {
      std::vector<std::string> ids;
      for (const auto& [id, obligation] : program.obligations()) ids.push_back(id);
      const std::string id = Pick(ids);
      if (Chance(0.5)) {
        return {{"op", "obligation_submit"},
                {"actor", Admin()},
                {"program", "p1"},
                {"obligation", id},
                {"reference", "https://example.org/report"}};
      }
      return {{"op", "obligation_review"},
              {"actor", Admin()},
              {"program", "p1"},
              {"obligation", id},
              {"accept", Chance(0.8)}};
    }
    if (kind < 70 && !grants.empty()) {
      const int64_t sizes[] = {1, 4, 8, 16, 32, 64};
      const bool gpu = Chance(0.3);
      // A quarter come from students (their allocation pays, if they have one).
      const json actor = Chance(0.25) ? json{{"role", "student"},
                                             {"person", Pid(4 * Uniform(0, 19) + 2)},
                                             {"token", "tok-student"}}
                                      : Admin();
      return {{"op", "job_submit"},
              {"actor", actor},
              {"program", "p1"},
              {"grant", Pick(grants)},
              {"chips", gpu ? Uniform(1, 8) : sizes[Uniform(0, 5)]},
              {"walltime_s", Uniform(60, 4 * 3600)},
              {"accelerator", gpu ? "h100" : "trn1"},
              {"name", "job"},
              {"argv", json::array({"train", "--steps", "10"})}};
    }
    const uint64_t jobs = app.jobs().size();
    if (kind < 80 && jobs > 0) {
      return {{"op", Chance(0.5) ? "job_finish" : "job_cancel"},
              {"actor", Admin()},
              {"job", "J" + std::to_string(Uniform(1, static_cast<int64_t>(jobs)))}};
    }
    if (kind < 84 && app.cluster() != nullptr) {
      const auto& nodes = app.cluster()->nodes();
      return {{"op", Chance(0.5) ? "node_drain" : "node_resume"},
              {"actor", {{"role", "operator"}}},
              {"node", nodes[static_cast<size_t>(Uniform(0, 11))].name}};
    }
    if (kind < 88) {
      if (Chance(0.7)) {
        const int64_t n = tokens_++;
        return TokenCreate("tok-" + std::to_string(n), "researcher", Pid(n % 80));
      }
      return {{"op", "token_revoke"},
              {"actor", Admin()},
              {"token_id", "tok-" + std::to_string(Uniform(0, std::max<int64_t>(0, tokens_)))}};
    }
    return {{"op", "tick"}, {"actor", Admin()}};
  }

  std::mt19937_64 rng_;
  size_t count_;
  bool strict_ = std::getenv("ATRIUM_REPLAY_STRICT") != nullptr;
  uint64_t institutions_ = 0;
  uint64_t people_ = 0;
  int64_t tokens_ = 0;
  uint64_t next_key_ = 0;
  std::vector<json> retryable_;
  std::map<std::string, size_t> steps_;  // each call's next op while grants are few
  static size_t ProposalsIn(const program::ProgramState& program, const std::string& call) {
    size_t count = 0;
    for (const auto& [id, proposal] : program.proposals()) {
      if (proposal.input.call == call) ++count;
    }
    return count;
  }
};

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtoull(text, nullptr, 10) : fallback;
}

class ReplayDeterminism : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = EnvOr("ATRIUM_SEED", std::random_device{}());
    count_ = EnvOr("ATRIUM_REPLAY_OPS", 12'000);
    std::cout << "replay determinism: ATRIUM_SEED=" << seed_ << " ATRIUM_REPLAY_OPS=" << count_
              << '\n';
    dir_ = std::filesystem::temp_directory_path() /
           ("atrium-replay-" + std::to_string(::getpid()) + "-" + std::to_string(seed_));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  uint64_t seed_ = 0;
  size_t count_ = 0;
  std::filesystem::path dir_;
};

TEST_F(ReplayDeterminism, SnapshotsAndJournalRebuildTheLiveState) {
  SCOPED_TRACE("ATRIUM_SEED=" + std::to_string(seed_));
  // The live run, with snapshots at random points.
  core::Core live;
  std::vector<Op> ops;
  std::vector<std::string> answers;
  Generator(seed_, count_).Run(live, &ops, &answers);
  const std::string live_hash = StateHash(live);
  ASSERT_TRUE(live.Verify().ok());

  // How much of the domain the run reached (a generator that stops reaching it would
  // make this test weaker without failing it).
  const program::ProgramState& program = *live.app().FindProgram("p1");
  EXPECT_GT(program.proposals().size(), 20u);
  EXPECT_FALSE(program.reviews().empty());
  EXPECT_FALSE(program.grants().empty());
  EXPECT_GT(live.app().jobs().size(), 50u);
  size_t changed = 0;
  for (const std::string& answer : answers) changed += answer.starts_with("ok ") ? 1u : 0u;
  if (std::getenv("ATRIUM_REPLAY_DEBUG") != nullptr) {
    std::map<std::string, int> tally;
    for (size_t i = 0; i < ops.size(); ++i) {
      const json op = json::parse(ops[i].json);
      tally[op.value("op", "") + " " +
            answers[i].substr(0, std::min<size_t>(answers[i].size(), 60))]++;
    }
    for (const auto& [key, n] : tally) std::cout << n << " " << key << '\n';
  }
  std::cout << "ops " << ops.size() << ", applied " << changed << ", jobs "
            << live.app().jobs().size() << ", grants " << program.grants().size() << '\n';

  // Replay from the start to random points, snapshot there, decode, and go on.
  std::mt19937_64 rng(seed_ ^ 0x5eed);
  std::vector<size_t> cuts = {0, ops.size()};
  for (int i = 0; i < 3; ++i)
    cuts.push_back(std::uniform_int_distribution<size_t>(1, ops.size() - 1)(rng));
  std::sort(cuts.begin(), cuts.end());
  core::Core replay;
  size_t applied = 0;
  for (const size_t cut : cuts) {
    for (; applied < cut; ++applied) {
      const auto result =
          replay.Apply(core::AppCommand{.now_us = ops[applied].now_us, .json = ops[applied].json});
      ASSERT_EQ(AnswerText(result), answers[applied])
          << "op " << applied << ": " << ops[applied].json;
    }
    std::string bytes;
    replay.Encode(&bytes);
    auto decoded = core::Core::Decode(bytes);
    ASSERT_TRUE(decoded.ok()) << "at op " << cut << ": " << decoded.error().ToString();
    std::string again;
    decoded->Encode(&again);
    ASSERT_EQ(again, bytes) << "decode then encode differs at op " << cut;
    // The decoded state applies the rest exactly as the live one did.
    for (size_t i = cut; i < ops.size(); ++i) {
      const auto result =
          decoded->Apply(core::AppCommand{.now_us = ops[i].now_us, .json = ops[i].json});
      ASSERT_EQ(AnswerText(result), answers[i])
          << "after a snapshot at op " << cut << ", op " << i << ": " << ops[i].json;
    }
    ASSERT_EQ(StateHash(*decoded), live_hash) << "snapshot at op " << cut;
  }

  // Through a real store: once with automatic snapshots, once with the journal alone.
  for (const bool snapshots : {true, false}) {
    SCOPED_TRACE(snapshots ? "snapshots and tail" : "journal alone");
    const std::string path = (dir_ / (snapshots ? "snap.db" : "journal.db")).string();
    journal::Options options{.snapshot_entries = std::max<uint64_t>(64, count_ / 12),
                             .auto_snapshot = snapshots};
    {
      auto store = journal::SqliteStore::Open(path, journal::OpenMode::kReadWriteCreate);
      ASSERT_TRUE(store.ok()) << store.error().ToString();
      auto durable = journal::DurableCore::Open(std::move(*store), options);
      ASSERT_TRUE(durable.ok()) << durable.error().ToString();
      std::uniform_int_distribution<size_t> batch(1, 256);
      for (size_t at = 0; at < ops.size();) {
        const size_t end = std::min(ops.size(), at + batch(rng));
        std::vector<core::Command> commands;
        for (size_t i = at; i < end; ++i) {
          commands.emplace_back(std::in_place_type<core::AppCommand>, ops[i].now_us, ops[i].json);
        }
        auto results = (*durable)->Submit(commands);
        ASSERT_TRUE(results.ok()) << results.error().ToString();
        for (size_t i = at; i < end; ++i) {
          ASSERT_EQ(AnswerText((*results)[i - at]), answers[i]) << "journaled op " << i;
        }
        at = end;
      }
      ASSERT_EQ(StateHash((*durable)->core()), live_hash);
      if (snapshots) {
        // The policy took snapshots on the way (a failed one is retried silently: check).
        EXPECT_GT((*durable)->last_seq(), (*durable)->entries_since_snapshot());
        const Status snapshot = (*durable)->Snapshot();
        EXPECT_TRUE(snapshot.ok()) << snapshot.error().ToString();
      }
    }
    auto store = journal::SqliteStore::Open(path, journal::OpenMode::kReadWriteCreate);
    ASSERT_TRUE(store.ok());
    auto reopened = journal::DurableCore::Open(std::move(*store), options);
    ASSERT_TRUE(reopened.ok()) << reopened.error().ToString();
    if (snapshots) {
      EXPECT_GT((*reopened)->recovered_from_seq(), 0u);
    } else {
      EXPECT_EQ((*reopened)->recovered_from_seq(), 0u);
    }
    EXPECT_EQ(StateHash((*reopened)->core()), live_hash);
    // Every stored snapshot equals the state the journal replays to at its entry.
    auto check = journal::SqliteStore::Open(path, journal::OpenMode::kReadOnly);
    ASSERT_TRUE(check.ok());
    auto report = journal::VerifyStore(**check);
    ASSERT_TRUE(report.ok()) << report.error().ToString();
    if (snapshots) {
      EXPECT_GT(report->snapshots_checked, 0u);
      // Restart from every stored snapshot: decode it, apply the journal after it.
      auto index = (*check)->SnapshotIndex();
      ASSERT_TRUE(index.ok());
      EXPECT_GT(index->size(), 1u);
      for (const journal::StoredSnapshot& listed : *index) {
        auto stored = (*check)->ReadSnapshot(listed.seq);
        ASSERT_TRUE(stored.ok());
        auto restarted = core::Core::Decode(stored->state);
        ASSERT_TRUE(restarted.ok())
            << "snapshot " << listed.seq << ": " << restarted.error().ToString();
        ASSERT_TRUE(restarted->Verify().ok()) << "snapshot " << listed.seq;
        const Status scanned =
            (*check)->Scan(listed.seq, [&](const journal::StoredEntry& entry) -> Status {
              ATRIUM_ASSIGN_OR_RETURN(core::Command command, core::DecodeCommand(entry.payload));
              if (!restarted->Apply(command).changed) {
                return MakeError(ErrorCode::kCorruption,
                                 "entry " + std::to_string(entry.seq) + " no longer applies");
              }
              return OkStatus();
            });
        ASSERT_TRUE(scanned.ok()) << "after snapshot " << listed.seq << ": "
                                  << scanned.error().ToString();
        EXPECT_EQ(StateHash(*restarted), live_hash) << "restart from snapshot " << listed.seq;
      }
    }
  }
}

}  // namespace
}  // namespace atrium
