// atrium_restart_store: builds a service store for the restart benchmark
// (scripts/bench-restart.sh) by driving core::Core through journal::DurableCore directly
// (no HTTP): a program with `--grants` grants (proposals, reviews, a committed decision per
// call), the research-40k cluster, and `--jobs` jobs submitted, run and ended by ticks.
// Then one snapshot, then `--tail` more journal entries (job submissions) after it.
// Prints one JSON line: entries, seconds, the snapshot's size and its encode time.
// `--append N` instead opens an existing store (from its snapshot) and adds N entries of
// the same kind, so one built store serves several tail lengths.
//
//   atrium_restart_store --db /tmp/r.db --cluster examples/clusters/research-40k.toml
//       --jobs 1000000 --grants 10000 --tail 100000
//   atrium_restart_store --db /tmp/r.db --append 10000
//
// `--memory N` measures instead the heap kept per record (issue 14's budget: a job record
// <= 300 B, an idempotency key <= 200 B plus its stored answer) on a core without a
// journal: a program with `--grants` grants and the cluster, a warm-up wave of jobs, then
// N jobs (submitted, run and ended) and N more carrying idempotency keys; the heap in use
// (mallinfo2: arena and mmapped blocks) and RSS are read before and after each. Prints
// one JSON line.
//
//   atrium_restart_store --memory 200000 --grants 100 --cluster examples/clusters/research-40k.toml
#include <malloc.h>
#include <algorithm>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/core.h"
#include "journal/journal.h"
#include "journal/sqlite_store.h"
#include "program/validate.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kDayUs = 86'400'000'000LL;
constexpr int64_t kT0Us = 1'767'225'600'000'000LL;  // 2026-01-01

[[noreturn]] void Die(const std::string& why) {
  std::cerr << "atrium_restart_store: " << why << '\n';
  std::exit(1);
}

std::string Date(int64_t day) {  // 2026-01-01 + day, for day < 59
  char text[16];
  const int month = day < 31 ? 1 : 2;
  std::snprintf(text, sizeof(text), "2026-%02d-%02d", month,
                static_cast<int>(day < 31 ? day + 1 : day - 30));
  return text;
}

std::string ProgramToml(int calls) {
  std::string toml = R"([program]
id = "bench"
name = "Restart benchmark"
currency = "USD"
total_budget = 100000000000
award_policy = "greedy"
topics = ["ml"]
[program.prices]
trn1 = "1.34375"
[[program.rubric]]
name = "merit"
weight = 1
min = 1
max = 5
[program.obligations]
progress_report_months = []
final_report = false
paper = false
repository = false
[[track]]
id = "research"
name = "Research"
kind = "research"
budget = 90000000000
award_cap = 5000000
pi_roles = ["faculty"]
)";
  // Every call opens on day 1, closes on day 2, reviews by day 3, decides on day 4.
  for (int call = 0; call < calls; ++call) {
    toml += "[[call]]\nid = \"c" + std::to_string(call) +
            "\"\ntrack = \"research\"\nopens = " + Date(1) + "\ncloses = " + Date(2) +
            "\nreview_deadline = " + Date(3) + "\ndecision = " + Date(4) +
            "\nreviewers_per_proposal = 1\n";
  }
  return toml;
}

}  // namespace

int main(int argc, char** argv) {
  std::string db;
  std::string cluster_path;
  int64_t jobs = 1'000'000;
  int64_t grants = 10'000;
  int64_t tail = 0;
  int64_t append = -1;
  int64_t memory = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--db")
      db = value;
    else if (flag == "--cluster")
      cluster_path = value;
    else if (flag == "--jobs")
      jobs = std::stoll(value);
    else if (flag == "--grants")
      grants = std::stoll(value);
    else if (flag == "--tail")
      tail = std::stoll(value);
    else if (flag == "--append")
      append = std::stoll(value);
    else if (flag == "--memory")
      memory = std::stoll(value);
    else
      Die("unknown flag " + flag);
  }
  if ((db.empty() && memory < 0) || (cluster_path.empty() && append < 0)) {
    Die("--db (or --memory) and --cluster (or --append) are required");
  }
  std::ifstream cluster_file(cluster_path);
  std::stringstream cluster_text;
  cluster_text << cluster_file.rdbuf();

  // The journaled store, or (--memory) a bare core.
  std::unique_ptr<atrium::journal::DurableCore> durable;
  std::optional<atrium::core::Core> bare;
  const auto opened = Clock::now();
  if (memory >= 0) {
    bare.emplace();
  } else {
    auto store =
        atrium::journal::SqliteStore::Open(db, atrium::journal::OpenMode::kReadWriteCreate);
    if (!store.ok()) Die(store.error().ToString());
    auto open = atrium::journal::DurableCore::Open(std::move(*store), {.auto_snapshot = false});
    if (!open.ok()) Die(open.error().ToString());
    durable = std::move(*open);
  }
  const auto started = Clock::now();
  const double open_s = std::chrono::duration<double>(started - opened).count();
  auto state = [&]() -> const atrium::core::Core& { return bare ? *bare : durable->core(); };

  int64_t now_us = kT0Us + kDayUs;  // day 1: the calls are open
  std::vector<atrium::core::Command> batch;
  int64_t entries = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<atrium::core::CommandResult> results;
    if (bare) {
      for (const atrium::core::Command& command : batch) results.push_back(bare->Apply(command));
    } else {
      auto submitted = durable->Submit(batch);
      if (!submitted.ok()) Die(submitted.error().ToString());
      results = std::move(*submitted);
    }
    for (const auto& result : results) {
      if (result.app && !result.app->status.ok())
        Die("refused: " + result.app->status.error().ToString());
    }
    entries += static_cast<int64_t>(batch.size());
    batch.clear();
  };
  auto op = [&](json command) {
    now_us += 1000;
    batch.emplace_back(std::in_place_type<atrium::core::AppCommand>, now_us, command.dump());
    if (batch.size() >= 2000) flush();
  };
  const json admin = {{"role", "admin"}, {"token", "t-admin"}};
  std::vector<std::string> grant_ids;
  bool keyed = false;  // submissions carry an idempotency key
  auto submit = [&](int64_t job) {
    json command = {{"op", "job_submit"},
                    {"actor", admin},
                    {"program", "bench"},
                    {"grant", grant_ids[static_cast<size_t>(job) % grant_ids.size()]},
                    {"chips", int64_t{1} << (2 * (job % 3))},
                    {"walltime_s", 600},
                    {"accelerator", "trn1"},
                    {"name", "job"},
                    {"argv", json::array({"train"})}};
    if (keyed) command["idempotency_key"] = "key-" + std::to_string(job);
    op(std::move(command));
  };
  // Jobs from..to, in waves of 4,000 ended by a tick 11 minutes later.
  auto submit_waves = [&](int64_t from, int64_t to) {
    for (int64_t job = from; job < to; ++job) {
      submit(job);
      if (job % 4000 == 3999) {
        now_us += 660'000'000;
        op({{"op", "tick"}, {"actor", admin}});
      }
    }
  };
  if (append >= 0) {
    const atrium::core::AppState& app = state().app();
    const atrium::program::ProgramState* program = app.FindProgram("bench");
    if (program == nullptr) Die("no program bench in " + db);
    for (const auto& [id, grant] : program->grants()) grant_ids.push_back(id);
    now_us = std::max(now_us, app.last_now_us());
    const auto first = static_cast<int64_t>(app.jobs().size());
    const auto before = durable->last_seq();
    submit_waves(first, first + append);
    flush();
    std::cout << json{{"appended_entries", durable->last_seq() - before},
                      {"open_s", open_s},
                      {"tail_entries", durable->entries_since_snapshot()}}
                     .dump()
              << '\n';
    return 0;
  }
  op({{"op", "token_create"},
      {"actor", admin},
      {"token_id", "t-admin"},
      {"role", "admin"},
      {"person", ""},
      {"salt", std::string(32, 'a')},
      {"hash", std::string(64, 'b')}});
  op({{"op", "cluster_load"}, {"actor", admin}, {"toml", cluster_text.str()}});
  const int calls = static_cast<int>((grants + 999) / 1000);
  op({{"op", "program_create"}, {"actor", admin}, {"toml", ProgramToml(calls)}});
  op({{"op", "institution_add"},
      {"actor", admin},
      {"program", "bench"},
      {"institution", {{"id", "I1"}, {"name", "University"}, {"type", "r1"}, {"country", "US"}}}});
  op({{"op", "institution_add"},
      {"actor", admin},
      {"program", "bench"},
      {"institution", {{"id", "I2"}, {"name", "Lab"}, {"type", "r1"}, {"country", "US"}}}});
  for (int call = 0; call < calls; ++call) {
    op({{"op", "call_open"},
        {"actor", admin},
        {"program", "bench"},
        {"call", "c" + std::to_string(call)}});
  }
  const int64_t reviewers = 200;
  for (int64_t r = 0; r < reviewers; ++r) {
    op({{"op", "person_add"},
        {"actor", admin},
        {"program", "bench"},
        {"person",
         {{"id", atrium::program::OrcidFromNumber(static_cast<uint64_t>(10 + r))},
          {"name", "Reviewer"},
          {"institution", "I2"},
          {"role", "staff"},
          {"expertise", json::array({"ml"})},
          {"reviewer", true}}}});
  }
  for (int64_t p = 0; p < grants; ++p) {
    op({{"op", "person_add"},
        {"actor", admin},
        {"program", "bench"},
        {"person",
         {{"id", atrium::program::OrcidFromNumber(static_cast<uint64_t>(100000 + p))},
          {"name", "PI"},
          {"institution", "I1"},
          {"role", "faculty"},
          {"expertise", json::array({"ml"})}}}});
    op({{"op", "proposal_submit"},
        {"actor", admin},
        {"program", "bench"},
        {"proposal",
         {{"id", "R" + std::to_string(p)},
          {"call", "c" + std::to_string(p / 1000)},
          {"pi", atrium::program::OrcidFromNumber(static_cast<uint64_t>(100000 + p))},
          {"title", "Work"},
          {"abstract", "Work."},
          {"topics", json::array({"ml"})},
          {"requested", "5000000"},
          {"duration_months", 12}}}});
  }
  flush();
  now_us = kT0Us + 2 * kDayUs;  // closes
  for (int call = 0; call < calls; ++call) {
    const std::string id = "c" + std::to_string(call);
    op({{"op", "call_close"}, {"actor", admin}, {"program", "bench"}, {"call", id}});
    op({{"op", "call_assign"}, {"actor", admin}, {"program", "bench"}, {"call", id}});
  }
  flush();
  for (const auto& assignment : state().app().FindProgram("bench")->assignments()) {
    op({{"op", "review_submit"},
        {"actor", {{"role", "reviewer"}, {"person", assignment.reviewer}}},
        {"program", "bench"},
        {"proposal", assignment.proposal},
        {"scores", json::array({4})}});
  }
  flush();
  now_us = kT0Us + 4 * kDayUs;  // decisions
  for (int call = 0; call < calls; ++call) {
    const std::string id = "c" + std::to_string(call);
    op({{"op", "decision_draft"}, {"actor", admin}, {"program", "bench"}, {"call", id}});
    op({{"op", "decision_commit"}, {"actor", admin}, {"program", "bench"}, {"call", id}});
  }
  flush();
  for (const auto& [id, grant] : state().app().FindProgram("bench")->grants()) {
    grant_ids.push_back(id);
  }
  if (static_cast<int64_t>(grant_ids.size()) < grants) {
    Die("only " + std::to_string(grant_ids.size()) + " grants were awarded");
  }
  if (memory >= 0) {
    // A warm-up wave (the scheduler's per-grant and per-node structures), then N plain
    // jobs, then N keyed ones; each ended by a tick.
    auto end_wave = [&] {
      now_us += 660'000'000;
      op({{"op", "tick"}, {"actor", admin}});
      flush();
    };
    // Heap in use: the arena's blocks and the blocks malloc mmaps on their own (a large
    // vector such as the scheduler's jobs lives there, outside uordblks).
    auto heap = [] {
      const struct mallinfo2 info = mallinfo2();
      return static_cast<int64_t>(info.uordblks + info.hblkhd);
    };
    auto rss = [] {
      std::ifstream statm("/proc/self/statm");
      int64_t pages = 0;
      int64_t resident = 0;
      statm >> pages >> resident;
      return resident * 4096;
    };
    submit_waves(0, 4000);
    end_wave();
    const int64_t heap0 = heap();
    const int64_t rss0 = rss();
    const uint64_t transfers0 = state().ledger().transfer_count();
    submit_waves(4000, 4000 + memory);
    end_wave();
    const int64_t heap1 = heap();
    const int64_t rss1 = rss();
    const uint64_t transfers1 = state().ledger().transfer_count();
    keyed = true;
    submit_waves(4000 + memory, 4000 + 2 * memory);
    end_wave();
    const int64_t heap2 = heap();
    const int64_t rss2 = rss();
    double answer_bytes = 0;
    for (int64_t job = 4000 + memory; job < 4000 + 2 * memory; ++job) {
      const std::optional<atrium::core::AppAnswer> answer =
          state().app().FindIdempotent("t-admin", "key-" + std::to_string(job));
      if (!answer) Die("an idempotency record is missing");
      answer_bytes += static_cast<double>(answer->result.dump().size());
    }
    const auto n = static_cast<double>(memory);
    const double job_heap = static_cast<double>(heap1 - heap0) / n;
    const double keyed_heap = static_cast<double>(heap2 - heap1) / n;
    std::cout << json{{"bench", "memory_per_record"},
                      {"records", memory},
                      {"jobs_total", state().app().jobs().size()},
                      {"job_heap_bytes", job_heap},
                      {"job_rss_bytes", static_cast<double>(rss1 - rss0) / n},
                      {"ledger_transfers_per_job",
                       static_cast<double>(transfers1 - transfers0) / n},
                      {"keyed_job_heap_bytes", keyed_heap},
                      {"key_heap_bytes", keyed_heap - job_heap},
                      {"key_rss_bytes", static_cast<double>((rss2 - rss1) - (rss1 - rss0)) / n},
                      {"stored_answer_bytes", answer_bytes / n},
                      {"key_heap_bytes_beyond_answer", keyed_heap - job_heap - answer_bytes / n}}
                     .dump()
              << '\n';
    return 0;
  }
  // Jobs: waves of 4,000 one-to-sixteen-chip jobs of 10 minutes; a tick 11 minutes later
  // ends them and the next wave comes.
  submit_waves(0, jobs);
  now_us += 660'000'000;
  op({{"op", "tick"}, {"actor", admin}});
  flush();
  const double build_s = std::chrono::duration<double>(Clock::now() - started).count();

  const auto encode_started = Clock::now();
  auto snapshot = durable->CaptureSnapshot();
  if (!snapshot.ok()) Die(snapshot.error().ToString());
  const double encode_s = std::chrono::duration<double>(Clock::now() - encode_started).count();
  const auto write_started = Clock::now();
  const size_t snapshot_bytes = snapshot->state.size();
  if (auto written = durable->WriteSnapshot(std::move(*snapshot)); !written.ok())
    Die(written.error().ToString());
  const double write_s = std::chrono::duration<double>(Clock::now() - write_started).count();
  // The tail after the snapshot: job submissions (and their ticks).
  submit_waves(jobs, jobs + tail);
  flush();
  json out = {{"entries", durable->last_seq()},
              {"jobs", state().app().jobs().size()},
              {"grants", grant_ids.size()},
              {"build_s", build_s},
              {"snapshot_seq", durable->last_seq() - durable->entries_since_snapshot()},
              {"snapshot_bytes", snapshot_bytes},
              {"snapshot_encode_s", encode_s},
              {"snapshot_write_s", write_s},
              {"tail_entries", durable->entries_since_snapshot()}};
  std::cout << out.dump() << '\n';
  return 0;
}
