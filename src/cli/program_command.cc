// `atrium program ...`: the grant program from the command line. Every subcommand but
// `demo` and `bench` runs one op of the service's op table (core/ops.h) on the durable
// core in a data folder (--data DIR, default atrium-program; see program_session.h), as
// an admin (a review: as its reviewer), at the logical time --at (a date or an ISO
// date-time in UTC; default: one second after the last applied op). `--state` is the
// old name of --data; an old JSON state file is refused with how to migrate.
#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <tuple>

#include "cli/commands.h"
#include "cli/program_session.h"
#include "core/ops.h"
#include "program/loader.h"
#include "program/synthetic.h"
#include "report/program_report.h"

#ifndef ATRIUM_EXAMPLES_DIR
#define ATRIUM_EXAMPLES_DIR "examples/programs"
#endif

namespace atrium::cli {
namespace {

using nlohmann::json;

struct ProgramOptions {
  std::string data_dir = "atrium-program";
  std::string program;  // default: the only program in the folder
  std::string at;
};

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIoError:
    case ErrorCode::kCorruption:
    case ErrorCode::kLocked:
    case ErrorCode::kJournalPoisoned:
    case ErrorCode::kChainBroken:
      return kExitStorage;
    case ErrorCode::kParseError:
      return kExitUsage;
    default:
      return kExitRefused;
  }
}

[[noreturn]] void Fail(const Error& error) {
  fmt::print(stderr, "error: {}\n", error.ToString());
  throw CLI::RuntimeError(ExitCodeFor(error.code));
}

template <typename T>
T OrFail(Result<T> result) {
  if (!result.ok()) Fail(result.error());
  return std::move(result).value();
}

void OrFail(const Status& status) {
  if (!status.ok()) Fail(status.error());
}

int64_t TimeOr(const std::string& text, int64_t fallback_us) {
  return text.empty() ? fallback_us : OrFail(program::ParseTimeUs(text));
}

std::string ProgramId(const ProgramSession& session, const ProgramOptions& options) {
  return OrFail(session.Program(options.program))->definition().id;
}

// Opens the data folder, applies one op to its program and returns the answer (durable).
json ApplyOp(ProgramSession& session, const ProgramOptions& options, json command,
             const core::Actor& actor = {.role = core::Role::kAdmin}) {
  const int64_t at_us = TimeOr(options.at, session.last_at_us() + program::kMicrosPerSecond);
  if (command.value("op", "") != "tick") command["program"] = ProgramId(session, options);
  return OrFail(session.Apply(std::move(command), at_us, actor));
}

json ApplyToData(const ProgramOptions& options, json command,
                 const core::Actor& actor = {.role = core::Role::kAdmin}) {
  ProgramSession session = OrFail(ProgramSession::Open(options.data_dir, /*create=*/false));
  return ApplyOp(session, options, std::move(command), actor);
}

// "key=value key=value" of an op's answer.
std::string Summary(const json& answer) {
  std::string out;
  for (const auto& [key, value] : answer.items()) {
    out += (out.empty() ? "" : " ") + key + "=" +
           (value.is_string() ? value.get<std::string>() : value.dump());
  }
  return out;
}

// A people file as people_import takes it (all or nothing).
json PeopleImportJson(const program::PeopleFile& people) {
  json institutions = json::array();
  for (const program::Institution& institution : people.institutions) {
    institutions.push_back({{"id", institution.id},
                            {"name", institution.name},
                            {"type", institution.type},
                            {"country", institution.country}});
  }
  json persons = json::array();
  for (const program::Person& person : people.people) {
    persons.push_back({{"id", person.id},
                       {"name", person.name},
                       {"institution", person.institution},
                       {"role", person.role},
                       {"expertise", person.expertise},
                       {"collaborators", person.collaborators},
                       {"reviewer", person.reviewer}});
  }
  return {{"op", "people_import"}, {"institutions", institutions}, {"people", persons}};
}

void PrintDecision(const program::Decision& decision, size_t rows_max) {
  fmt::print("decision for {}: policy {}, {}, gap {:.4f}%, {} credits awarded\n", decision.call,
             decision.policy, decision.optimal ? "optimal" : "not proven optimal",
             decision.gap * 100.0, decision.total_awarded.ToString());
  for (const program::FloorOutcome& floor : decision.floors) {
    fmt::print(
        "  floor {}: {:.2f}% required, {:.2f}% reachable and enforced, {:.2f}% achieved, {}\n",
        floor.name, static_cast<double>(floor.share_bp_required) / 100.0,
        static_cast<double>(floor.share_bp_enforced) / 100.0,
        static_cast<double>(floor.share_bp_achieved) / 100.0, floor.met ? "met" : "NOT met");
  }
  fmt::print("  {:>4}  {:<14} {:>6} {:>12} {:>12}  {}\n", "rank", "proposal", "score", "requested",
             "awarded", "rationale");
  size_t shown = 0;
  for (const program::ProposalOutcome& outcome : decision.outcomes) {
    if (shown++ == rows_max) {
      fmt::print("  ... {} more\n", decision.outcomes.size() - rows_max);
      break;
    }
    fmt::print("  {:>4}  {:<14} {:>6.2f} {:>12} {:>12}  {}\n", outcome.rank, outcome.proposal,
               outcome.merit, outcome.requested.ToString(), outcome.awarded.ToString(),
               program::ToString(outcome.rationale));
  }
}

void PrintReportText(const json& report) {
  fmt::print("{} ({})\n", report["program"]["name"].get<std::string>(),
             report["program"]["id"].get<std::string>());
  const json& budget = report["budget"];
  fmt::print("budget {}: committed {}, released {}, spent {}, returned {}\n",
             budget["total"].get<std::string>(), budget["committed"].get<std::string>(),
             budget["released"].get<std::string>(), budget["spent"].get<std::string>(),
             budget["returned"].get<std::string>());
  for (const json& track : report["tracks"]) {
    fmt::print("  track {:<22} budget {:>10}  committed {:>10}  grants {:>3} of {:>3} proposals\n",
               track["track"].get<std::string>(), track["budget"].get<std::string>(),
               track["committed"].get<std::string>(), track["grants"].get<int64_t>(),
               track["proposals"].get<int64_t>());
  }
  for (const char* key : {"awards_by_institution_type", "awards_by_country", "awards_by_topic"}) {
    fmt::print("{}:", key);
    for (const json& bucket : report[key]) {
      fmt::print(" {}={}", bucket["key"].get<std::string>(), bucket["credits"].get<std::string>());
    }
    fmt::print("\n");
  }
  fmt::print("gini across {} institutions that applied: {}\n",
             report["institutions_applied"].get<int64_t>(), report["gini_institutions"].dump());
  for (const json& floor : report["fairness_floors"]) {
    fmt::print("floor {} in {}: required {}%, enforced {}%, achieved {}%, {}\n",
               floor["floor"].get<std::string>(), floor["call"].get<std::string>(),
               floor["required_percent"].dump(), floor["enforced_percent"].dump(),
               floor["achieved_percent"].dump(), floor["met"].get<bool>() ? "met" : "NOT met");
  }
  fmt::print("obligations: {}\n", report["obligations"].dump());
  fmt::print("public log: {} entries, head {}\n", report["log"]["entries"].get<int64_t>(),
             report["log"]["head"].get<std::string>());
}

void PrintReport(const program::ProgramState& state, const std::string& format) {
  if (format == "json") {
    fmt::print("{}\n", report::ProgramReportJson(state).dump(2));
  } else if (format == "html") {
    fmt::print("{}", report::ProgramReportHtml(state));
  } else {
    PrintReportText(report::ProgramReportJson(state));
  }
}

// ---------------------------------------------------------------------------------------
// The demo: a whole call cycle of examples/programs/build-on-trainium.toml with the
// fictional people and proposals of examples/programs/demo/.

struct DemoOptions {
  std::string dir;
  std::string format = "text";
  std::string log_out;
  std::string data_out;
  bool quiet = false;
};

std::string FindExamples(const std::string& requested) {
  if (!requested.empty()) return requested;
  if (std::filesystem::exists("examples/programs/build-on-trainium.toml"))
    return "examples/programs";
  return ATRIUM_EXAMPLES_DIR;
}

// The demo's ops run through the same table as the service's, phase by phase (every
// call closed, then every call assigned, ...), so logical time only moves forward.
void RunDemo(const DemoOptions& options) {
  const std::string dir = FindExamples(options.dir);
  const std::string program_toml = OrFail(ReadFile(dir + "/build-on-trainium.toml"));
  const auto at = [](const char* text) { return OrFail(program::ParseTimeUs(text)); };
  // The example's call dates are relative to the load ("+0d"): loaded on 2026-01-15, its
  // calls open that day and close on 2026-03-01.
  const int64_t load_us = at("2026-01-15");
  const program::ProgramDefinition definition =
      OrFail(program::ParseProgramToml(program_toml, load_us));
  ProgramSession session = options.data_out.empty()
                               ? ProgramSession::InMemory()
                               : OrFail(ProgramSession::Open(options.data_out, true));
  const std::string id = definition.id;
  const bool talk = !options.quiet && options.format == "text";
  const core::Actor admin{.role = core::Role::kAdmin};
  const auto apply = [&](json command, int64_t at_us, const core::Actor& actor) {
    if (command.value("op", "") != "program_create" && command.value("op", "") != "tick") {
      command["program"] = id;
    }
    return OrFail(session.Apply(std::move(command), at_us, actor));
  };
  const auto step = [&](json command, int64_t at_us, const char* text) {
    json answer = apply(std::move(command), at_us, admin);
    if (talk && text != nullptr) fmt::print("- {}\n", text);
    return answer;
  };
  // The seal secret is fixed here so the demo's log is the same on every run.
  step({{"op", "program_create"}, {"toml", program_toml}, {"seal_secret", std::string(64, 'd')}},
       load_us, nullptr);
  step(PeopleImportJson(
           OrFail(program::ParsePeopleToml(OrFail(ReadFile(dir + "/demo/people.toml"))))),
       load_us, "registered institutions, researchers and reviewers");
  for (const program::CallDefinition& call : definition.calls) {
    step({{"op", "call_open"}, {"call", call.id}}, call.opens_us, "opened a call");
  }
  for (const program::ProposalInput& proposal :
       OrFail(program::ParseProposalsToml(OrFail(ReadFile(dir + "/demo/proposals.toml"))))) {
    step({{"op", "proposal_submit"}, {"proposal", program::ProposalSubmitJson(proposal)}},
         at("2026-02-10"), nullptr);
  }
  if (talk) fmt::print("- received the proposals\n");
  const program::ProgramState& state = *OrFail(session.Program(id));
  const std::string first_proposal = state.proposals().begin()->first;
  for (const auto& [person_id, person] : state.people()) {
    if (!person.reviewer) continue;
    step({{"op", "conflict_declare"},
          {"reviewer", person_id},
          {"proposal", first_proposal},
          {"note", "declared by the reviewer: former advisor"}},
         at("2026-02-11"), "a reviewer declared a conflict by hand");
    break;
  }
  for (const program::CallDefinition& call : definition.calls) {
    step({{"op", "call_close"}, {"call", call.id}}, call.closes_us, "closed a call");
  }
  for (const program::CallDefinition& call : definition.calls) {
    step({{"op", "call_assign"}, {"call", call.id}}, call.closes_us + program::kMicrosPerDay,
         "assigned reviewers (conflicts found automatically)");
  }
  for (const program::CallDefinition& call : definition.calls) {
    step({{"op", "reviews_simulate"}, {"call", call.id}, {"seed", 2026}},
         call.review_deadline_us - program::kMicrosPerDay,
         "reviewers scored their proposals (simulated: hidden quality, reviewer bias, noise)");
  }
  // A call's awards count against the institution caps of the next call's draft, so
  // each call is drafted and committed before the next is drafted.
  for (const program::CallDefinition& call : definition.calls) {
    step({{"op", "decision_draft"}, {"call", call.id}}, call.decision_us - program::kMicrosPerDay,
         "drafted the decision");
    if (talk) PrintDecision(OrFail(session.Program(id))->decisions().at(call.id), 12);
    step({{"op", "decision_commit"}, {"call", call.id}}, call.decision_us,
         "committed the decision: grants created, credits moved in one linked ledger batch");
  }
  // After the awards: some use, reports, a paper, a repository, and a missed report; in
  // time order across grants.
  if (talk) {
    fmt::print(
        "- after the awards: jobs charged to every grant, progress reports accepted "
        "(second tranches released), papers and repositories reported\n");
  }
  std::vector<std::pair<int64_t, json>> later;
  int64_t index = 0;
  for (const auto& [grant_id, grant] : OrFail(session.Program(id))->grants()) {
    const int64_t start = grant.start_us;
    const program::ProgramState& now = *OrFail(session.Program(id));
    later.emplace_back(
        start + 20 * program::kMicrosPerDay,
        json{{"op", "usage_record"},
             {"grant", grant_id},
             {"amount", Credits::FromMicro(grant.awarded.micro() / 10 / Credits::kMicroPerCredit *
                                           Credits::kMicroPerCredit)
                            .ToString()}});
    const std::string progress = grant_id + "/progress-1";
    if (now.obligations().count(progress) != 0 && index % 4 != 3) {
      later.emplace_back(start + 170 * program::kMicrosPerDay,
                         json{{"op", "obligation_submit"},
                              {"obligation", progress},
                              {"reference", "progress report, month 6"}});
      later.emplace_back(
          start + 172 * program::kMicrosPerDay,
          json{{"op", "obligation_review"}, {"obligation", progress}, {"accept", true}});
    }
    if (index % 3 == 0 && now.obligations().count(grant_id + "/paper") != 0) {
      later.emplace_back(start + 175 * program::kMicrosPerDay,
                         json{{"op", "obligation_submit"},
                              {"obligation", grant_id + "/paper"},
                              {"reference", "arXiv:2609.0" + std::to_string(1000 + index)}});
      later.emplace_back(
          start + 175 * program::kMicrosPerDay,
          json{{"op", "obligation_submit"},
               {"obligation", grant_id + "/repository"},
               {"reference", "https://github.com/atrium-demo/project-" + std::to_string(index)},
               {"license", "Apache-2.0"}});
    }
    ++index;
  }
  std::stable_sort(later.begin(), later.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [at_us, command] : later) step(std::move(command), at_us, nullptr);
  step({{"op", "tick"}}, at("2026-12-01"),
       "time passed: missed progress reports became overdue and froze their grants");

  const program::ProgramState& final_state = *OrFail(session.Program(id));
  if (!options.log_out.empty()) OrFail(WriteFile(options.log_out, final_state.log().Export()));
  const program::LogVerification verification = program::VerifyLog(final_state.log().Export());
  if (talk) {
    fmt::print("- the public log verifies: {} ({} entries)\n\n", verification.ok ? "yes" : "NO",
               verification.entries);
  }
  PrintReport(final_state, options.format);
  if (!verification.ok) Fail(MakeError(ErrorCode::kChainBroken, verification.reason));
}

// `atrium program bench`: the performance targets, printed as JSON.
void RunBench(int64_t proposals, int64_t reviewers, const std::string& policy) {
  using Clock = std::chrono::steady_clock;
  const auto seconds = [](Clock::time_point from) {
    return std::chrono::duration<double>(Clock::now() - from).count();
  };
  const program::SyntheticOptions synthetic{.proposals = proposals,
                                            .reviewers = reviewers,
                                            .institutions = std::max<int64_t>(20, proposals / 16),
                                            .seed = 7};
  Clock::time_point start = Clock::now();
  program::ProgramState state = OrFail(program::MakeSyntheticCall(synthetic));
  const double setup_s = seconds(start);
  start = Clock::now();
  const program::AssignmentStats stats =
      OrFail(state.AssignReviewers(program::kSyntheticCall, 41 * program::kMicrosPerDay));
  const double assign_s = seconds(start);
  OrFail(program::SimulateReviews(state, program::kSyntheticCall, 7, 50 * program::kMicrosPerDay));
  start = Clock::now();
  const program::Decision decision =
      OrFail(state.DraftDecision(program::kSyntheticCall, 75 * program::kMicrosPerDay, policy));
  const double decide_s = seconds(start);
  OrFail(state.CommitDecision(program::kSyntheticCall, 80 * program::kMicrosPerDay));
  start = Clock::now();
  const json report = report::ProgramReportJson(state);
  const std::string html = report::ProgramReportHtml(state);
  const double report_s = seconds(start);
  start = Clock::now();
  const program::LogVerification verification = program::VerifyLog(state.log().Export());
  const double verify_s = seconds(start);
  fmt::print("{}\n", json{{"proposals", proposals},
                          {"reviewers", reviewers},
                          {"setup_s", setup_s},
                          {"assign_s", assign_s},
                          {"load_min", stats.load_min},
                          {"load_max", stats.load_max},
                          {"assignments_with_expertise", stats.with_expertise},
                          {"decide_s", decide_s},
                          {"policy_requested", policy},
                          {"policy_used", decision.policy},
                          {"optimal", decision.optimal},
                          {"gap", decision.gap},
                          {"awarded", decision.total_awarded.ToString()},
                          {"report_s", report_s},
                          {"report_html_bytes", html.size()},
                          {"log_entries", state.log().size()},
                          {"log_verify_s", verify_s},
                          {"log_ok", verification.ok}}
                         .dump());
}

}  // namespace

void RegisterProgramCommands(CLI::App& app) {
  CLI::App* program = app.add_subcommand(
      "program",
      "Grant programs offline: the service's ops on a durable core in a data folder "
      "(calls, proposals, review, awards, grants)");
  program->require_subcommand(1);
  auto options = std::make_shared<ProgramOptions>();
  const auto common = [options](CLI::App* command) {
    command->add_option("--data", options->data_dir, "Data folder (the journal: DIR/atrium.db)")
        ->capture_default_str();
    command->add_option("--state", options->data_dir,
                        "Old name of --data (an old JSON state file is refused)");
    command->add_option("--program", options->program,
                        "Program id (default: the only one in the folder)");
    command->add_option("--at", options->at, "Logical time: 2026-03-01 or 2026-03-01T09:00:00Z");
  };

  {
    auto path = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    CLI::App* load = program->add_subcommand(
        "load", "Create a program (op program_create) in a data folder from its TOML");
    load->add_option("program", *path, "Program definition (TOML)")->required();
    load->add_flag("--force", *force, "Start the data folder over (deletes its journal)");
    common(load);
    load->callback([options, path, force] {
      const std::string text = OrFail(ReadFile(*path));
      // Relative call dates ("+30d") resolve against --at; without it they are refused.
      const std::optional<int64_t> load_us =
          options->at.empty() ? std::nullopt
                              : std::optional<int64_t>(OrFail(program::ParseTimeUs(options->at)));
      const program::ProgramDefinition definition =
          OrFail(program::ParseProgramToml(text, load_us));
      if (*force) {
        std::error_code ignored;
        for (const char* suffix : {"", "-wal", "-shm", "-journal", ".lock"}) {
          std::filesystem::remove(ProgramStorePath(options->data_dir) + suffix, ignored);
        }
      }
      int64_t earliest = 0;
      for (const program::CallDefinition& call : definition.calls) {
        earliest = earliest == 0 ? call.opens_us : std::min(earliest, call.opens_us);
      }
      ProgramSession session = OrFail(ProgramSession::Open(options->data_dir, true));
      // The seal secret keys the salts of sealed reviews in the public log: drawn here,
      // in the shell, from the system's random source, and journaled with the op.
      std::random_device random;
      std::string secret;
      for (int byte_idx = 0; byte_idx < 32; ++byte_idx) {
        secret += fmt::format("{:02x}", random() & 0xFFu);
      }
      const int64_t at_us =
          TimeOr(options->at, std::max(session.last_at_us(), earliest - program::kMicrosPerDay));
      OrFail(session.Apply({{"op", "program_create"}, {"toml", text}, {"seal_secret", secret}},
                           at_us));
      fmt::print("loaded program {} into {}\n", definition.id, options->data_dir);
    });
  }
  {
    auto path = std::make_shared<std::string>();
    CLI::App* people = program->add_subcommand(
        "people",
        "Register institutions, people and reviewers from a TOML file (op people_import: "
        "all or nothing)");
    people->add_option("file", *path, "TOML file ([[institution]] and [[person]] tables)")
        ->required();
    common(people);
    people->callback([options, path] {
      const program::PeopleFile file = OrFail(program::ParsePeopleToml(OrFail(ReadFile(*path))));
      const json answer = ApplyToData(*options, PeopleImportJson(file));
      fmt::print("people_import: {}\n", Summary(answer));
    });
  }
  {
    auto path = std::make_shared<std::string>();
    CLI::App* submit = program->add_subcommand(
        "submit", "Submit (or edit) proposals from a TOML file (op proposal_submit, one each)");
    submit->add_option("file", *path, "TOML file ([[proposal]] tables)")->required();
    common(submit);
    submit->callback([options, path] {
      const std::vector<program::ProposalInput> proposals =
          OrFail(program::ParseProposalsToml(OrFail(ReadFile(*path))));
      ProgramSession session = OrFail(ProgramSession::Open(options->data_dir, false));
      for (const program::ProposalInput& proposal : proposals) {
        const json answer = ApplyOp(
            session, *options,
            {{"op", "proposal_submit"}, {"proposal", program::ProposalSubmitJson(proposal)}});
        fmt::print("proposal_submit: {}\n", Summary(answer));
      }
    });
  }

  const auto call_command = [&](const char* name, const char* help, const char* op) {
    auto call = std::make_shared<std::string>();
    auto policy = std::make_shared<std::string>();
    CLI::App* command = program->add_subcommand(name, fmt::format("{} (op {})", help, op));
    command->add_option("call", *call, "Call id")->required();
    const bool draft = std::string(op) == "decision_draft";
    if (draft) {
      command->add_option("--policy", *policy, "Award policy: mip or greedy (default: program's)");
    }
    common(command);
    command->callback([options, call, policy, op, draft] {
      json request = {{"op", op}, {"call", *call}};
      if (!policy->empty()) request["policy"] = *policy;
      ProgramSession session = OrFail(ProgramSession::Open(options->data_dir, false));
      const json answer = ApplyOp(session, *options, std::move(request));
      if (draft) {
        PrintDecision(OrFail(session.Program(options->program))->decisions().at(*call), SIZE_MAX);
      } else {
        fmt::print("{}: {}\n", op, Summary(answer));
      }
    });
  };
  call_command("open-call", "Open a call for proposals", "call_open");
  call_command("close-call", "Close a call after its deadline", "call_close");
  call_command("assign", "Find conflicts and assign reviewers to a closed call", "call_assign");
  call_command("decide", "Draft the award decision of a call (prints every rationale)",
               "decision_draft");
  call_command("commit", "Commit the drafted decision: create grants and move credits",
               "decision_commit");

  // An op with positional fields, printed as its answer.
  const auto op_command = [&](const char* name, const char* help, const char* op,
                              std::vector<std::pair<std::string, std::string>> positional) {
    auto values = std::make_shared<std::vector<std::string>>(positional.size());
    CLI::App* command = program->add_subcommand(name, fmt::format("{} (op {})", help, op));
    for (size_t i = 0; i < positional.size(); ++i) {
      command->add_option(positional[i].first, (*values)[i], positional[i].second)->required();
    }
    common(command);
    return std::make_pair(command, values);
  };
  {
    CLI::App* withdraw = nullptr;
    std::shared_ptr<std::vector<std::string>> values;
    std::tie(withdraw, values) =
        op_command("withdraw", "Withdraw a proposal", "proposal_withdraw", {{"proposal", ""}});
    withdraw->callback([options, values] {
      const json answer =
          ApplyToData(*options, {{"op", "proposal_withdraw"}, {"proposal", (*values)[0]}});
      fmt::print("proposal_withdraw: {}\n", Summary(answer));
    });
  }
  {
    auto note = std::make_shared<std::string>();
    CLI::App* conflict = nullptr;
    std::shared_ptr<std::vector<std::string>> values;
    std::tie(conflict, values) =
        op_command("conflict", "Declare a reviewer's conflict", "conflict_declare",
                   {{"reviewer", ""}, {"proposal", ""}});
    conflict->add_option("--note", *note, "Why");
    conflict->callback([options, values, note] {
      const json answer = ApplyToData(*options, {{"op", "conflict_declare"},
                                                 {"reviewer", (*values)[0]},
                                                 {"proposal", (*values)[1]},
                                                 {"note", *note}});
      fmt::print("conflict_declare: {}\n", Summary(answer));
    });
  }
  {
    auto scores = std::make_shared<std::vector<int64_t>>();
    auto comment = std::make_shared<std::string>();
    CLI::App* review = nullptr;
    std::shared_ptr<std::vector<std::string>> values;
    std::tie(review, values) = op_command("review", "Submit a review, as its reviewer",
                                          "review_submit", {{"reviewer", ""}, {"proposal", ""}});
    review->add_option("--scores", *scores, "One integer per rubric criterion, comma-separated")
        ->required()
        ->delimiter(',');
    review->add_option("--comment", *comment);
    review->callback([options, values, scores, comment] {
      const json answer = ApplyToData(*options,
                                      {{"op", "review_submit"},
                                       {"proposal", (*values)[1]},
                                       {"scores", *scores},
                                       {"comment", *comment}},
                                      {.role = core::Role::kReviewer, .person = (*values)[0]});
      fmt::print("review_submit: {}\n", Summary(answer));
    });
  }
  {
    auto seed = std::make_shared<int64_t>(1);
    CLI::App* simulate = nullptr;
    std::shared_ptr<std::vector<std::string>> values;
    std::tie(simulate, values) =
        op_command("simulate-reviews", "Fill every open assignment of a call with simulated scores",
                   "reviews_simulate", {{"call", ""}});
    simulate->add_option("--seed", *seed)->capture_default_str();
    simulate->callback([options, values, seed] {
      const json answer = ApplyToData(
          *options, {{"op", "reviews_simulate"}, {"call", (*values)[0]}, {"seed", *seed}});
      fmt::print("reviews_simulate: {}\n", Summary(answer));
    });
  }
  {
    CLI::App* usage = nullptr;
    std::shared_ptr<std::vector<std::string>> values;
    std::tie(usage, values) = op_command("usage", "Charge actual use to a grant", "usage_record",
                                         {{"grant", ""}, {"amount", "Credits"}});
    usage->callback([options, values] {
      const json answer = ApplyToData(
          *options, {{"op", "usage_record"}, {"grant", (*values)[0]}, {"amount", (*values)[1]}});
      fmt::print("usage_record: {}\n", Summary(answer));
    });
  }
  {
    CLI::App* allocate = nullptr;
    std::shared_ptr<std::vector<std::string>> values;
    std::tie(allocate, values) =
        op_command("allocate", "Give a student part of a course grant", "student_allocate",
                   {{"grant", ""}, {"student", ""}, {"amount", "Credits"}});
    allocate->callback([options, values] {
      const json answer = ApplyToData(*options, {{"op", "student_allocate"},
                                                 {"grant", (*values)[0]},
                                                 {"student", (*values)[1]},
                                                 {"amount", (*values)[2]}});
      fmt::print("student_allocate: {}\n", Summary(answer));
    });
  }
  {
    CLI::App* close = nullptr;
    std::shared_ptr<std::vector<std::string>> values;
    std::tie(close, values) = op_command("close-grant", "Return a grant's unspent credits",
                                         "grant_close", {{"grant", ""}});
    close->callback([options, values] {
      const json answer = ApplyToData(*options, {{"op", "grant_close"}, {"grant", (*values)[0]}});
      fmt::print("grant_close: {}\n", Summary(answer));
    });
  }
  {
    CLI::App* obligation = program->add_subcommand("obligation", "Deliverables of a grant");
    obligation->require_subcommand(1);
    auto id = std::make_shared<std::string>();
    auto reference = std::make_shared<std::string>();
    auto license = std::make_shared<std::string>();
    CLI::App* submit = obligation->add_subcommand(
        "submit", "Submit evidence for an obligation (op obligation_submit)");
    submit->add_option("obligation", *id, "e.g. G-P-001/paper")->required();
    submit->add_option("--reference", *reference, "DOI, arXiv id, repository URL or report")
        ->required();
    submit->add_option("--license", *license, "OSI license id (repositories)");
    common(submit);
    submit->callback([options, id, reference, license] {
      json request = {{"op", "obligation_submit"}, {"obligation", *id}, {"reference", *reference}};
      if (!license->empty()) request["license"] = *license;
      const json answer = ApplyToData(*options, std::move(request));
      fmt::print("obligation_submit: {}\n", Summary(answer));
    });
    for (const bool accept : {true, false}) {
      CLI::App* review =
          obligation->add_subcommand(accept ? "accept" : "reject",
                                     accept ? "Accept submitted evidence (op obligation_review)"
                                            : "Reject submitted evidence (op obligation_review)");
      review->add_option("obligation", *id)->required();
      common(review);
      review->callback([options, id, accept] {
        const json answer = ApplyToData(
            *options, {{"op", "obligation_review"}, {"obligation", *id}, {"accept", accept}});
        fmt::print("obligation_review: {}\n", Summary(answer));
      });
    }
  }
  {
    CLI::App* tick = program->add_subcommand(
        "tick", "Let time pass: overdue obligations, sanctions, grant expiry (op tick)");
    common(tick);
    tick->callback([options] {
      const json answer = ApplyToData(*options, {{"op", "tick"}});
      fmt::print("tick: {}\n", Summary(answer));
    });
  }
  {
    auto format = std::make_shared<std::string>("text");
    CLI::App* status = program->add_subcommand("status", "Summarize the program (the report)");
    status->add_option("--format", *format, "text, json or html")
        ->check(CLI::IsMember({"text", "json", "html"}));
    common(status);
    status->callback([options, format] {
      ProgramSession session = OrFail(ProgramSession::Load(options->data_dir));
      PrintReport(*OrFail(session.Program(options->program)), *format);
    });
  }
  {
    auto out = std::make_shared<std::string>();
    CLI::App* export_log =
        program->add_subcommand("export-log", "Write the public decision log (JSON Lines)");
    export_log->add_option("--out", *out, "File (default: standard output)");
    common(export_log);
    export_log->callback([options, out] {
      ProgramSession session = OrFail(ProgramSession::Load(options->data_dir));
      const program::ProgramState& state = *OrFail(session.Program(options->program));
      const std::string text = state.log().Export();
      if (out->empty()) {
        fmt::print("{}", text);
      } else {
        OrFail(WriteFile(*out, text));
        fmt::print("wrote {} entries to {}\n", state.log().size(), *out);
      }
    });
  }
  {
    auto demo = std::make_shared<DemoOptions>();
    CLI::App* command = program->add_subcommand(
        "demo", "Run a whole call of the Build on Trainium example and print the report");
    command->add_option("--dir", demo->dir, "Examples folder (default: examples/programs)");
    command->add_option("--format", demo->format, "text, json or html")
        ->check(CLI::IsMember({"text", "json", "html"}))
        ->capture_default_str();
    command->add_option("--log-out", demo->log_out, "Also write the public log here");
    command->add_option("--data", demo->data_out,
                        "Run on a durable data folder (default: in memory)");
    command->add_option("--state-out", demo->data_out, "Old name of --data");
    command->add_flag("--quiet", demo->quiet, "Print only the report");
    command->callback([demo] { RunDemo(*demo); });
  }
  {
    auto proposals = std::make_shared<int64_t>(5000);
    auto reviewers = std::make_shared<int64_t>(1000);
    auto policy = std::make_shared<std::string>("mip");
    CLI::App* bench = program->add_subcommand(
        "bench", "Time assignment, decision and report on a synthetic call; prints JSON");
    bench->add_option("--proposals", *proposals)
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    bench->add_option("--reviewers", *reviewers)
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    bench->add_option("--policy", *policy)
        ->capture_default_str()
        ->check(CLI::IsMember({"mip", "greedy"}));
    bench->callback([proposals, reviewers, policy] { RunBench(*proposals, *reviewers, *policy); });
  }
}

}  // namespace atrium::cli
