// `atrium program ...`: the grant program from the command line. Every subcommand but
// `demo` and `bench` works on a state file (--state, default atrium-program.json; see
// program_session.h) and takes its logical time from --at (a date or an ISO date-time in
// UTC; default: one second after the last recorded command).
#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/program_session.h"
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
  std::string state_path = "atrium-program.json";
  std::string at;
};

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIoError:
    case ErrorCode::kCorruption:
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

// Loads the state file, applies one command and saves.
ProgramSession ApplyToState(const ProgramOptions& options, json command) {
  ProgramSession session = OrFail(ProgramSession::Load(options.state_path));
  command["at_us"] = TimeOr(options.at, session.last_at_us() + program::kMicrosPerSecond);
  OrFail(session.Apply(std::move(command)));
  OrFail(session.Save(options.state_path));
  return session;
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
  std::string state_out;
  bool quiet = false;
};

std::string FindExamples(const std::string& requested) {
  if (!requested.empty()) return requested;
  if (std::filesystem::exists("examples/programs/build-on-trainium.toml"))
    return "examples/programs";
  return ATRIUM_EXAMPLES_DIR;
}

void RunDemo(const DemoOptions& options) {
  const std::string dir = FindExamples(options.dir);
  const std::string program_toml = OrFail(ReadFile(dir + "/build-on-trainium.toml"));
  const auto at = [](const char* text) { return OrFail(program::ParseTimeUs(text)); };
  // The example's call dates are relative to the load ("+0d"): loaded on 2026-01-15, its
  // calls open that day and close on 2026-03-01.
  const int64_t load_us = at("2026-01-15");
  const program::ProgramDefinition definition =
      OrFail(program::ParseProgramToml(program_toml, load_us));
  ProgramSession session = OrFail(ProgramSession::Create(program_toml, load_us));
  const bool talk = !options.quiet && options.format == "text";
  const auto step = [&](json command, const char* text) {
    OrFail(session.Apply(std::move(command)));
    if (talk) fmt::print("- {}\n", text);
  };
  step(
      {{"op", "people"}, {"at_us", load_us}, {"toml", OrFail(ReadFile(dir + "/demo/people.toml"))}},
      "registered institutions, researchers and reviewers");
  for (const program::CallDefinition& call : definition.calls) {
    step({{"op", "open_call"}, {"at_us", call.opens_us}, {"call", call.id}}, "opened a call");
  }
  step({{"op", "submit"},
        {"at_us", at("2026-02-10")},
        {"toml", OrFail(ReadFile(dir + "/demo/proposals.toml"))}},
       "received the proposals");
  const std::string first_proposal = session.state().proposals().begin()->first;
  for (const auto& [id, person] : session.state().people()) {
    if (!person.reviewer) continue;
    step({{"op", "conflict"},
          {"at_us", at("2026-02-11")},
          {"reviewer", id},
          {"proposal", first_proposal},
          {"note", "declared by the reviewer: former advisor"}},
         "a reviewer declared a conflict by hand");
    break;
  }
  for (const program::CallDefinition& call : definition.calls) {
    step({{"op", "close_call"}, {"at_us", call.closes_us}, {"call", call.id}}, "closed a call");
    step({{"op", "assign"}, {"at_us", call.closes_us + program::kMicrosPerDay}, {"call", call.id}},
         "assigned reviewers (conflicts found automatically)");
    step({{"op", "simulate_reviews"},
          {"at_us", call.review_deadline_us - program::kMicrosPerDay},
          {"call", call.id},
          {"seed", 2026}},
         "reviewers scored their proposals (simulated: hidden quality, reviewer bias, noise)");
    step({{"op", "draft"}, {"at_us", call.decision_us - program::kMicrosPerDay}, {"call", call.id}},
         "drafted the decision");
    if (talk) PrintDecision(*session.last_decision(), 12);
    step({{"op", "commit"}, {"at_us", call.decision_us}, {"call", call.id}},
         "committed the decision: grants created, credits moved in one linked ledger batch");
  }
  // After the awards: some use, reports, a paper, a repository, and a missed report.
  if (talk) {
    fmt::print(
        "- after the awards: jobs charged to every grant, progress reports accepted "
        "(second tranches released), papers and repositories reported\n");
  }
  const auto quiet_step = [&](json command, const char*) {
    OrFail(session.Apply(std::move(command)));
  };
  int64_t index = 0;
  std::vector<std::string> grant_ids;
  for (const auto& [id, grant] : session.state().grants()) grant_ids.push_back(id);
  for (const std::string& id : grant_ids) {
    const program::Grant& grant = session.state().grants().at(id);
    const int64_t start = grant.start_us;
    quiet_step({{"op", "usage"},
                {"at_us", start + 20 * program::kMicrosPerDay},
                {"grant", id},
                {"amount", Credits::FromMicro(grant.awarded.micro() / 10 /
                                              Credits::kMicroPerCredit * Credits::kMicroPerCredit)
                               .ToString()}},
               "an awardee ran jobs");
    const std::string progress = id + "/progress-1";
    if (session.state().obligations().count(progress) != 0 && index % 4 != 3) {
      quiet_step({{"op", "obligation_submit"},
                  {"at_us", start + 170 * program::kMicrosPerDay},
                  {"obligation", progress},
                  {"reference", "progress report, month 6"}},
                 "an awardee submitted a progress report");
      quiet_step({{"op", "obligation_review"},
                  {"at_us", start + 172 * program::kMicrosPerDay},
                  {"obligation", progress},
                  {"accept", true}},
                 "the officer accepted it (its tranche released)");
    }
    if (index % 3 == 0 && session.state().obligations().count(id + "/paper") != 0) {
      quiet_step({{"op", "obligation_submit"},
                  {"at_us", start + 175 * program::kMicrosPerDay},
                  {"obligation", id + "/paper"},
                  {"reference", "arXiv:2609.0" + std::to_string(1000 + index)}},
                 "an awardee reported a paper");
      quiet_step({{"op", "obligation_submit"},
                  {"at_us", start + 175 * program::kMicrosPerDay},
                  {"obligation", id + "/repository"},
                  {"reference", "https://github.com/atrium-demo/project-" + std::to_string(index)},
                  {"license", "Apache-2.0"}},
                 "an awardee published the code");
    }
    ++index;
  }
  step({{"op", "tick"}, {"at_us", at("2026-12-01")}},
       "time passed: missed progress reports became overdue and froze their grants");

  if (!options.log_out.empty()) OrFail(WriteFile(options.log_out, session.state().log().Export()));
  if (!options.state_out.empty()) OrFail(session.Save(options.state_out));
  const program::LogVerification verification = program::VerifyLog(session.state().log().Export());
  if (talk) {
    fmt::print("- the public log verifies: {} ({} entries)\n\n", verification.ok ? "yes" : "NO",
               verification.entries);
  }
  PrintReport(session.state(), options.format);
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
  CLI::App* program =
      app.add_subcommand("program", "Grant programs: calls, proposals, review, awards, grants");
  program->require_subcommand(1);
  auto options = std::make_shared<ProgramOptions>();
  const auto common = [options](CLI::App* command) {
    command->add_option("--state", options->state_path, "Program state file")
        ->capture_default_str();
    command->add_option("--at", options->at, "Logical time: 2026-03-01 or 2026-03-01T09:00:00Z");
  };

  {
    auto path = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    CLI::App* load = program->add_subcommand("load", "Create a state file from a program TOML");
    load->add_option("program", *path, "Program definition (TOML)")->required();
    load->add_flag("--force", *force, "Replace an existing state file");
    common(load);
    load->callback([options, path, force] {
      if (!*force && std::filesystem::exists(options->state_path)) {
        Fail(MakeError(ErrorCode::kAlreadyExists,
                       options->state_path + " exists (use --force to replace it)", "state"));
      }
      const std::string text = OrFail(ReadFile(*path));
      // Relative call dates ("+30d") resolve against --at; without it they are refused.
      const std::optional<int64_t> load_us =
          options->at.empty() ? std::nullopt
                              : std::optional<int64_t>(OrFail(program::ParseTimeUs(options->at)));
      const program::ProgramDefinition definition =
          OrFail(program::ParseProgramToml(text, load_us));
      int64_t earliest = 0;
      for (const program::CallDefinition& call : definition.calls) {
        earliest = earliest == 0 ? call.opens_us : std::min(earliest, call.opens_us);
      }
      ProgramSession session =
          OrFail(ProgramSession::Create(text, load_us.value_or(earliest - program::kMicrosPerDay)));
      OrFail(session.Save(options->state_path));
      fmt::print("loaded program {} into {}\n", definition.id, options->state_path);
    });
  }
  const auto file_command = [&](const char* name, const char* help, const char* op) {
    auto path = std::make_shared<std::string>();
    CLI::App* command = program->add_subcommand(name, help);
    command->add_option("file", *path, "TOML file")->required();
    common(command);
    command->callback([options, path, op] {
      ApplyToState(*options, {{"op", op}, {"toml", OrFail(ReadFile(*path))}});
      fmt::print("{}: applied {}\n", op, *path);
    });
  };
  file_command("people", "Register institutions, people and reviewers from a TOML file", "people");
  file_command("submit", "Submit (or edit) proposals from a TOML file", "submit");

  const auto call_command = [&](const char* name, const char* help, const char* op) {
    auto call = std::make_shared<std::string>();
    auto policy = std::make_shared<std::string>();
    CLI::App* command = program->add_subcommand(name, help);
    command->add_option("call", *call, "Call id")->required();
    if (std::string(op) == "draft") {
      command->add_option("--policy", *policy, "Award policy: mip or greedy (default: program's)");
    }
    common(command);
    command->callback([options, call, policy, op] {
      json request = {{"op", op}, {"call", *call}};
      if (!policy->empty()) request["policy"] = *policy;
      ProgramSession session = ApplyToState(*options, std::move(request));
      if (std::string(op) == "draft") {
        PrintDecision(*session.last_decision(), SIZE_MAX);
      } else {
        fmt::print("{} {}: ok\n", op, *call);
      }
    });
  };
  call_command("open-call", "Open a call for proposals", "open_call");
  call_command("close-call", "Close a call after its deadline", "close_call");
  call_command("assign", "Find conflicts and assign reviewers to a closed call", "assign");
  call_command("decide", "Draft the award decision of a call (prints every rationale)", "draft");
  call_command("commit", "Commit the drafted decision: create grants and move credits", "commit");

  {
    auto proposal = std::make_shared<std::string>();
    CLI::App* withdraw = program->add_subcommand("withdraw", "Withdraw a proposal");
    withdraw->add_option("proposal", *proposal)->required();
    common(withdraw);
    withdraw->callback([options, proposal] {
      ApplyToState(*options, {{"op", "withdraw"}, {"proposal", *proposal}});
      fmt::print("withdrew {}\n", *proposal);
    });
  }
  {
    auto reviewer = std::make_shared<std::string>();
    auto proposal = std::make_shared<std::string>();
    auto note = std::make_shared<std::string>();
    CLI::App* conflict = program->add_subcommand("conflict", "Declare a reviewer's conflict");
    conflict->add_option("reviewer", *reviewer)->required();
    conflict->add_option("proposal", *proposal)->required();
    conflict->add_option("--note", *note, "Why");
    common(conflict);
    conflict->callback([options, reviewer, proposal, note] {
      ApplyToState(
          *options,
          {{"op", "conflict"}, {"reviewer", *reviewer}, {"proposal", *proposal}, {"note", *note}});
      fmt::print("recorded the conflict\n");
    });
  }
  {
    auto reviewer = std::make_shared<std::string>();
    auto proposal = std::make_shared<std::string>();
    auto scores = std::make_shared<std::vector<int64_t>>();
    auto comment = std::make_shared<std::string>();
    CLI::App* review = program->add_subcommand("review", "Submit a review");
    review->add_option("reviewer", *reviewer)->required();
    review->add_option("proposal", *proposal)->required();
    review->add_option("--scores", *scores, "One integer per rubric criterion, comma-separated")
        ->required()
        ->delimiter(',');
    review->add_option("--comment", *comment);
    common(review);
    review->callback([options, reviewer, proposal, scores, comment] {
      ApplyToState(*options, {{"op", "review"},
                              {"reviewer", *reviewer},
                              {"proposal", *proposal},
                              {"scores", *scores},
                              {"comment", *comment}});
      fmt::print("recorded the review\n");
    });
  }
  {
    auto call = std::make_shared<std::string>();
    auto seed = std::make_shared<uint64_t>(1);
    CLI::App* simulate = program->add_subcommand(
        "simulate-reviews", "Fill every open assignment of a call with simulated scores");
    simulate->add_option("call", *call)->required();
    simulate->add_option("--seed", *seed)->capture_default_str();
    common(simulate);
    simulate->callback([options, call, seed] {
      ApplyToState(*options, {{"op", "simulate_reviews"}, {"call", *call}, {"seed", *seed}});
      fmt::print("simulated reviews for {}\n", *call);
    });
  }
  {
    auto grant = std::make_shared<std::string>();
    auto amount = std::make_shared<std::string>();
    auto student = std::make_shared<std::string>();
    CLI::App* usage = program->add_subcommand("usage", "Charge actual use to a grant");
    usage->add_option("grant", *grant)->required();
    usage->add_option("amount", *amount, "Credits")->required();
    common(usage);
    usage->callback([options, grant, amount] {
      ApplyToState(*options, {{"op", "usage"}, {"grant", *grant}, {"amount", *amount}});
      fmt::print("charged {} to {}\n", *amount, *grant);
    });
    CLI::App* allocate =
        program->add_subcommand("allocate", "Give a student part of a course grant");
    allocate->add_option("grant", *grant)->required();
    allocate->add_option("student", *student)->required();
    allocate->add_option("amount", *amount, "Credits")->required();
    common(allocate);
    allocate->callback([options, grant, student, amount] {
      ApplyToState(
          *options,
          {{"op", "allocate"}, {"grant", *grant}, {"student", *student}, {"amount", *amount}});
      fmt::print("allocated {} of {} to {}\n", *amount, *grant, *student);
    });
    CLI::App* close = program->add_subcommand("close-grant", "Return a grant's unspent credits");
    close->add_option("grant", *grant)->required();
    common(close);
    close->callback([options, grant] {
      ApplyToState(*options, {{"op", "close_grant"}, {"grant", *grant}});
      fmt::print("closed {}\n", *grant);
    });
  }
  {
    CLI::App* obligation = program->add_subcommand("obligation", "Deliverables of a grant");
    obligation->require_subcommand(1);
    auto id = std::make_shared<std::string>();
    auto reference = std::make_shared<std::string>();
    auto license = std::make_shared<std::string>();
    CLI::App* submit = obligation->add_subcommand("submit", "Submit evidence for an obligation");
    submit->add_option("obligation", *id, "e.g. G-P-001/paper")->required();
    submit->add_option("--reference", *reference, "DOI, arXiv id, repository URL or report")
        ->required();
    submit->add_option("--license", *license, "OSI license id (repositories)");
    common(submit);
    submit->callback([options, id, reference, license] {
      ApplyToState(*options, {{"op", "obligation_submit"},
                              {"obligation", *id},
                              {"reference", *reference},
                              {"license", *license}});
      fmt::print("submitted {}\n", *id);
    });
    for (const bool accept : {true, false}) {
      CLI::App* review = obligation->add_subcommand(
          accept ? "accept" : "reject",
          accept ? "Accept submitted evidence" : "Reject submitted evidence");
      review->add_option("obligation", *id)->required();
      common(review);
      review->callback([options, id, accept] {
        ApplyToState(*options,
                     {{"op", "obligation_review"}, {"obligation", *id}, {"accept", accept}});
        fmt::print("{} {}\n", accept ? "accepted" : "rejected", *id);
      });
    }
  }
  {
    CLI::App* tick = program->add_subcommand(
        "tick", "Let time pass: overdue obligations, sanctions, grant expiry");
    common(tick);
    tick->callback([options] {
      ApplyToState(*options, {{"op", "tick"}});
      fmt::print("ok\n");
    });
  }
  {
    auto format = std::make_shared<std::string>("text");
    CLI::App* status = program->add_subcommand("status", "Summarize the program (the report)");
    status->add_option("--format", *format, "text, json or html")
        ->check(CLI::IsMember({"text", "json", "html"}));
    common(status);
    status->callback([options, format] {
      ProgramSession session = OrFail(ProgramSession::Load(options->state_path));
      PrintReport(session.state(), *format);
    });
  }
  {
    auto out = std::make_shared<std::string>();
    CLI::App* export_log =
        program->add_subcommand("export-log", "Write the public decision log (JSON Lines)");
    export_log->add_option("--out", *out, "File (default: standard output)");
    common(export_log);
    export_log->callback([options, out] {
      ProgramSession session = OrFail(ProgramSession::Load(options->state_path));
      const std::string text = session.state().log().Export();
      if (out->empty()) {
        fmt::print("{}", text);
      } else {
        OrFail(WriteFile(*out, text));
        fmt::print("wrote {} entries to {}\n", session.state().log().size(), *out);
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
    command->add_option("--state-out", demo->state_out, "Also write a state file here");
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
