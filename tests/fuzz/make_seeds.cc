// Writes the binary seeds of the journal-record and snapshot fuzzers with the real
// encoders, so the corpus follows the format: `make_seeds OUT_DIR` fills
// OUT_DIR/journal_record_fuzzer and OUT_DIR/snapshot_fuzzer. Run by hand after a format
// change (scripts/fuzz.sh --seeds); the output is committed under tests/fuzz/corpus.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/command.h"
#include "core/core.h"

namespace {

using namespace atrium;

void Write(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::vector<core::Command> Commands() {
  const int64_t now_us = 1'767'225'600'000'000;
  std::vector<core::Command> commands;
  commands.push_back(core::CreateAccounts{
      .now_us = now_us,
      .accounts = {{.id = 1, .kind = ledger::AccountKind::kSponsor},
                   {.id = 2, .kind = ledger::AccountKind::kGrant, .user_data = 7}}});
  commands.push_back(
      core::CreateTransfers{.now_us = now_us + 1,
                            .transfers = {{.id = 10,
                                           .debit_account_id = 1,
                                           .credit_account_id = 2,
                                           .amount = Credits::FromMicro(5'000'000)}}});
  commands.push_back(core::UpdateAccounts{.now_us = now_us + 2, .updates = {{.id = 2}}});
  commands.push_back(core::Tick{.now_us = now_us + 3});
  commands.push_back(core::AppCommand{
      .now_us = now_us + 4,
      .json = R"({"op":"token_create","actor":{"role":"admin"},"token_id":"t1","salt":"00",)"
              R"("hash":"00","role":"officer","label":"seed"})"});
  return commands;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  const std::filesystem::path out = argv[1];
  core::Core core;
  std::string state;
  core.Encode(&state);
  Write(out / "snapshot_fuzzer" / "empty", state);
  int index = 0;
  for (const core::Command& command : Commands()) {
    std::string bytes;
    core::EncodeCommand(command, &bytes);
    Write(out / "journal_record_fuzzer" / std::string(core::CommandName(command)), bytes);
    (void)core.Apply(command);
    state.clear();
    core.Encode(&state);
    Write(out / "snapshot_fuzzer" / ("after_" + std::to_string(++index)), state);
  }
  return 0;
}
