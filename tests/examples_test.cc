// Every example file, loaded together as a new user meets them: the program `atrium serve`
// preloads, the clusters, the demo's people and proposals, and the traces. The names must
// agree across files (price keys are accelerator types of the example clusters, at the
// clusters' prices; proposals ask for priced types; trace jobs fit an example cluster and
// name a grant of their grants file), and the program must be usable on the day it is
// loaded: every call opens a minute after the load and takes the demo's proposals, whatever
// day that is (its dates are relative to the load, docs/program.md).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cluster/cluster.h"
#include "cluster/config.h"
#include "core/app_state.h"
#include "program/loader.h"
#include "sim/workload.h"

namespace atrium {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kMinuteUs = 60'000'000;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Examples {
  std::vector<fs::path> programs;   // programs/*.toml
  std::vector<fs::path> people;     // programs/<demo>/people.toml
  std::vector<fs::path> proposals;  // programs/<demo>/proposals.toml
  std::vector<fs::path> clusters;   // clusters/*.toml
  std::vector<fs::path> traces;     // traces/<name>.csv
  std::vector<fs::path> grants;     // traces/<name>-grants.csv
};

// Sorts every file under examples/ into its kind; a file of no known kind fails the test,
// so a new example cannot escape these checks.
Examples FindExamples() {
  Examples found;
  const fs::path root = ATRIUM_EXAMPLES_ROOT;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const fs::path relative = fs::relative(entry.path(), root);
    const std::string top = relative.begin()->string();
    const std::string name = relative.filename().string();
    const size_t depth = static_cast<size_t>(std::distance(relative.begin(), relative.end()));
    const auto ends_with = [&](std::string_view tail) {
      return name.size() >= tail.size() &&
             name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (ends_with(".md")) continue;  // their documentation
    if (top == "programs" && depth == 2 && ends_with(".toml")) {
      found.programs.push_back(entry.path());
    } else if (top == "programs" && depth == 3 && name == "people.toml") {
      found.people.push_back(entry.path());
    } else if (top == "programs" && depth == 3 && name == "proposals.toml") {
      found.proposals.push_back(entry.path());
    } else if (top == "clusters" && depth == 2 && ends_with(".toml")) {
      found.clusters.push_back(entry.path());
    } else if (top == "traces" && depth == 2 && ends_with("-grants.csv")) {
      found.grants.push_back(entry.path());
    } else if (top == "traces" && depth == 2 && ends_with(".csv")) {
      found.traces.push_back(entry.path());
    } else {
      ADD_FAILURE() << "an example file of no known kind: " << relative;
    }
  }
  for (auto* list : {&found.programs, &found.people, &found.proposals, &found.clusters,
                     &found.traces, &found.grants}) {
    std::sort(list->begin(), list->end());
  }
  return found;
}

json Admin() { return json{{"role", "admin"}, {"token", "t-admin"}}; }

class ExamplesTest : public testing::Test {
 protected:
  void SetUp() override {
    examples_ = FindExamples();
    ASSERT_FALSE(examples_.programs.empty());
    ASSERT_FALSE(examples_.clusters.empty());
    for (const fs::path& path : examples_.clusters) {
      Result<cluster::Cluster> loaded = cluster::LoadClusterFile(path.string());
      ASSERT_TRUE(loaded.ok()) << path << ": " << loaded.error().ToString();
      clusters_.emplace(path.filename().string(), std::move(*loaded));
    }
  }

  Examples examples_;
  std::map<std::string, cluster::Cluster> clusters_;
};

TEST_F(ExamplesTest, PriceKeysAreAcceleratorTypesAtTheClustersPrices) {
  for (const fs::path& path : examples_.programs) {
    Result<program::ProgramDefinition> def =
        program::ParseProgramToml(Slurp(path), 1'800'000'000'000'000);
    ASSERT_TRUE(def.ok()) << path << ": " << def.error().ToString();
    EXPECT_FALSE(def->price_per_chip_hour.empty()) << path;
    for (const auto& [type, price] : def->price_per_chip_hour) {
      bool known = false;
      for (const auto& [name, cluster] : clusters_) {
        const auto index = cluster.FindAccelerator(type);
        if (!index) continue;
        known = true;
        EXPECT_EQ(cluster.accelerators()[*index].price_per_chip_hour, price)
            << path.filename() << " prices " << type << " at " << price.ToString() << ", " << name
            << " at " << cluster.accelerators()[*index].price_per_chip_hour.ToString();
      }
      EXPECT_TRUE(known) << path.filename() << ": price key '" << type
                         << "' is no accelerator type of any example cluster";
    }
    // Every type of the clusters has a price, so any job can be asked for in chip-hours.
    for (const auto& [name, cluster] : clusters_) {
      for (const cluster::AcceleratorType& type : cluster.accelerators()) {
        EXPECT_TRUE(def->price_per_chip_hour.contains(type.name))
            << path.filename() << " has no price for " << name << "'s type " << type.name;
      }
    }
  }
}

TEST_F(ExamplesTest, ProposalsAskForPricedTypesOfTheirProgram) {
  std::map<std::string, std::set<std::string>> prices_by_call;
  for (const fs::path& path : examples_.programs) {
    const auto def = program::ParseProgramToml(Slurp(path), 0);
    ASSERT_TRUE(def.ok()) << def.error().ToString();
    for (const program::CallDefinition& call : def->calls) {
      for (const auto& [type, price] : def->price_per_chip_hour) {
        prices_by_call[call.id].insert(type);
      }
    }
  }
  ASSERT_FALSE(examples_.proposals.empty());
  for (const fs::path& path : examples_.proposals) {
    const auto proposals = program::ParseProposalsToml(Slurp(path));
    ASSERT_TRUE(proposals.ok()) << path << ": " << proposals.error().ToString();
    for (const program::ProposalInput& proposal : *proposals) {
      ASSERT_TRUE(prices_by_call.contains(proposal.call))
          << proposal.id << " names call " << proposal.call << ", in no example program";
      for (const program::ChipHours& request : proposal.chip_hours) {
        EXPECT_TRUE(prices_by_call[proposal.call].contains(request.accelerator))
            << proposal.id << " asks for '" << request.accelerator << "', which has no price";
      }
    }
  }
}

TEST_F(ExamplesTest, TraceJobsFitAnExampleClusterAndNameTheirGrants) {
  ASSERT_FALSE(examples_.traces.empty());
  for (const fs::path& path : examples_.traces) {
    Result<sim::Workload> workload = sim::ReadTraceFile(path.string());
    ASSERT_TRUE(workload.ok()) << path << ": " << workload.error().ToString();
    ASSERT_FALSE(workload->jobs.empty()) << path;
    fs::path grants_path = path;
    grants_path.replace_filename(path.stem().string() + "-grants.csv");
    Result<std::vector<sim::GrantSpec>> grants = sim::ReadGrantsFile(grants_path.string());
    ASSERT_TRUE(grants.ok()) << grants_path << ": " << grants.error().ToString();
    std::set<std::string> grant_names;
    for (const sim::GrantSpec& grant : *grants) grant_names.insert(grant.name);
    // The cluster a trace is for: the one that takes every one of its jobs.
    std::vector<std::string> fits;
    for (const auto& entry : clusters_) {
      // Named, not a structured binding: clang 14 (the fuzz build) cannot capture one.
      const std::string& name = entry.first;
      const auto& cluster = entry.second;
      const bool all =
          std::all_of(workload->jobs.begin(), workload->jobs.end(), [&](const sched::JobSpec& job) {
            return cluster.Shape(job.accelerator, job.chips).ok() &&
                   cluster.CheckPartition(job.job_class, job.chips, job.walltime_s).ok();
          });
      if (all) fits.push_back(name);
    }
    EXPECT_FALSE(fits.empty()) << path.filename() << " has jobs no example cluster takes";
    for (const sched::JobSpec& job : workload->jobs) {
      EXPECT_TRUE(grant_names.contains(job.grant))
          << path.filename() << ": job " << job.id << " names grant " << job.grant << ", not in "
          << grants_path.filename();
    }
  }
}

// The service's path: program_create (as `atrium serve` preloads it) at a load time, the
// cluster, the demo's institutions and people; every call opens a minute later and takes
// every demo proposal. Two load times far apart: the same file works on any day.
TEST_F(ExamplesTest, EveryCallOpensAMinuteAfterTheLoadAndTakesTheDemoProposals) {
  for (const int64_t load_us : {int64_t{1'800'000'000'000'000}, int64_t{2'400'000'000'000'000}}) {
    SCOPED_TRACE("load at " + program::FormatTimeUs(load_us));
    core::AppState app;
    const auto apply = [&](json command, int64_t now_us) {
      command["actor"] = Admin();
      const core::AppAnswer answer = app.Apply(command, now_us);
      EXPECT_TRUE(answer.status.ok())
          << command.value("op", "") << ": " << answer.status.error().ToString();
      return answer.status.ok() ? answer.result : json();
    };
    std::map<std::string, std::string> program_of_call;
    for (const fs::path& path : examples_.programs) {
      const json created = apply({{"op", "program_create"}, {"toml", Slurp(path)}}, load_us);
      ASSERT_TRUE(created.is_object()) << path;
      const std::string program = created.at("program");
      const program::ProgramState* state = app.FindProgram(program);
      ASSERT_NE(state, nullptr);
      for (const program::CallDefinition& call : state->definition().calls) {
        EXPECT_GE(call.closes_us - load_us, 7 * 24 * 60 * kMinuteUs)
            << call.id << " closes less than a week after the load";
        const json opened = apply({{"op", "call_open"}, {"program", program}, {"call", call.id}},
                                  load_us + kMinuteUs);
        EXPECT_EQ(opened.value("state", ""), "open") << call.id;
        program_of_call[call.id] = program;
      }
    }
    // The pair `atrium serve` preloads.
    ASSERT_TRUE(clusters_.contains("research-40k.toml"));
    apply({{"op", "cluster_load"},
           {"toml", Slurp(fs::path(ATRIUM_EXAMPLES_ROOT) / "clusters" / "research-40k.toml")}},
          load_us);

    ASSERT_EQ(examples_.people.size(), examples_.proposals.size());
    for (size_t i = 0; i < examples_.people.size(); ++i) {
      const auto people = program::ParsePeopleToml(Slurp(examples_.people[i]));
      ASSERT_TRUE(people.ok()) << people.error().ToString();
      const auto proposals = program::ParseProposalsToml(Slurp(examples_.proposals[i]));
      ASSERT_TRUE(proposals.ok()) << proposals.error().ToString();
      ASSERT_TRUE(program_of_call.contains(proposals->front().call));
      const std::string program = program_of_call[proposals->front().call];
      const int64_t at = load_us + 2 * kMinuteUs;
      for (const program::Institution& institution : people->institutions) {
        apply({{"op", "institution_add"},
               {"program", program},
               {"institution",
                {{"id", institution.id},
                 {"name", institution.name},
                 {"type", institution.type},
                 {"country", institution.country}}}},
              at);
      }
      for (const program::Person& person : people->people) {
        apply({{"op", "person_add"},
               {"program", program},
               {"person",
                {{"id", person.id},
                 {"name", person.name},
                 {"institution", person.institution},
                 {"role", person.role},
                 {"expertise", person.expertise},
                 {"collaborators", person.collaborators},
                 {"reviewer", person.reviewer}}}},
              at);
      }
      size_t accepted = 0;
      for (const program::ProposalInput& input : *proposals) {
        const json proposal = program::ProposalSubmitJson(input);
        const json submitted =
            apply({{"op", "proposal_submit"}, {"program", program}, {"proposal", proposal}}, at);
        if (submitted.value("status", "") == "submitted") ++accepted;
      }
      EXPECT_EQ(accepted, proposals->size());
    }
  }
}

// Without a load time a relative date is refused, naming its field; an unknown unit or
// a malformed offset is not a date at all.
TEST(RelativeDates, ResolveAgainstTheLoadTimeOrAreRefused) {
  const std::string program =
      Slurp(fs::path(ATRIUM_EXAMPLES_ROOT) / "programs" / "build-on-trainium.toml");
  const Result<program::ProgramDefinition> unloaded = program::ParseProgramToml(program);
  ASSERT_FALSE(unloaded.ok());
  EXPECT_EQ(unloaded.error().code, ErrorCode::kParseError);
  EXPECT_EQ(unloaded.error().field, "call[0].opens");

  const int64_t load_us = *program::ParseTimeUs("2026-01-15");
  const Result<program::ProgramDefinition> loaded = program::ParseProgramToml(program, load_us);
  ASSERT_TRUE(loaded.ok()) << loaded.error().ToString();
  EXPECT_EQ(loaded->calls[0].opens_us, load_us);
  EXPECT_EQ(program::FormatTimeUs(loaded->calls[0].closes_us), "2026-03-01T00:00:00Z");

  EXPECT_EQ(program::ParseRelativeUs("+30d"), 30 * 24 * 60 * kMinuteUs);
  EXPECT_EQ(program::ParseRelativeUs("-2h"), -120 * kMinuteUs);
  EXPECT_EQ(program::ParseRelativeUs("+90m"), 90 * kMinuteUs);
  EXPECT_EQ(program::ParseRelativeUs("+0s"), 0);
  for (const char* bad : {"30d", "+d", "+3w", "+1.5d", "+ 3d", "+99999999d", "2026-01-15", ""}) {
    EXPECT_FALSE(program::ParseRelativeUs(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace atrium
