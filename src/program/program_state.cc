#include "program/program_state.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "program/scoring.h"
#include "program/validate.h"

namespace atrium::program {
namespace {

using ledger::AccountKind;
using ledger::AccountSpec;
using ledger::TransferSpec;
using nlohmann::json;

constexpr int64_t kDurationMonthsMax = 60;
constexpr size_t kCoInvestigatorsMax = 50;
constexpr size_t kTopicsMax = 20;

template <typename T>
bool Contains(const std::vector<T>& values, const T& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

std::string Money(Credits amount) { return amount.ToString(); }
// Scores go into the public log as integers (thousandths) so that the log holds no
// floating point and re-serializes byte for byte.
int64_t Milli(double value) { return static_cast<int64_t>(std::llround(value * 1000.0)); }

// The figures of a decision, as the public log gives them once it is committed.
json DecisionFigures(const Decision& decision) {
  json floors = json::array();
  for (const FloorOutcome& floor : decision.floors) {
    floors.push_back({{"name", floor.name},
                      {"share_bp_required", floor.share_bp_required},
                      {"share_bp_enforced", floor.share_bp_enforced},
                      {"share_bp_achieved", floor.share_bp_achieved},
                      {"met", floor.met}});
  }
  int64_t funded = 0;
  for (const ProposalOutcome& outcome : decision.outcomes) {
    funded += outcome.awarded.is_zero() ? 0 : 1;
  }
  return {{"policy", decision.policy},
          {"optimal", decision.optimal},
          {"gap_bp", Milli(decision.gap * 10.0)},
          {"objective_milli", Milli(decision.objective)},
          {"bound_milli", Milli(decision.bound)},
          {"total_awarded", Money(decision.total_awarded)},
          {"funded", funded},
          {"candidates", static_cast<int64_t>(decision.outcomes.size())},
          {"floors", floors}};
}

// HMAC-SHA-256 as lower-case hex.
std::string HmacHex(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const unsigned char* ok =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  ATRIUM_CHECK(ok != nullptr && length == 32, "HMAC-SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int index = 0; index < length; ++index) {
    out.push_back(kHex[digest[index] >> 4]);
    out.push_back(kHex[digest[index] & 0xF]);
  }
  return out;
}

Credits ScaleBp(Credits amount, int64_t share_bp) {
  return Credits::FromMicro(
      static_cast<int64_t>(static_cast<__int128>(amount.micro()) * share_bp / kBasisPointsFull));
}

Status CheckText(const std::string& text, const char* field) {
  if (text.size() > ProgramState::kTextBytesMax) {
    return MakeError(ErrorCode::kLimitExceeded, "text longer than 64 KiB", field);
  }
  return OkStatus();
}

Status ValidateDefinition(const ProgramDefinition& definition) {
  const auto bad = [](std::string message, std::string field) {
    return MakeError(ErrorCode::kInvalidArgument, std::move(message), std::move(field));
  };
  if (definition.id.empty()) return bad("program id is empty", "program.id");
  if (definition.total_budget <= Credits::Zero()) {
    return bad("total budget must be positive", "program.total_budget");
  }
  if (definition.rubric.empty()) return bad("rubric has no criteria", "program.rubric");
  for (const Criterion& criterion : definition.rubric) {
    if (criterion.weight <= 0 || criterion.score_min >= criterion.score_max) {
      return bad("criterion needs weight > 0 and min < max", criterion.name);
    }
  }
  for (const FairnessFloor& floor : definition.fairness_floors) {
    if (floor.share_bp < 0 || floor.share_bp > kBasisPointsFull) {
      return bad("floor share outside 0..100%", floor.name);
    }
    for (const std::string& topic : floor.topics) {
      if (!Contains(definition.topics, topic)) return bad("unknown topic " + topic, floor.name);
    }
    for (const std::string& track : floor.tracks) {
      const bool known = std::any_of(definition.tracks.begin(), definition.tracks.end(),
                                     [&](const Track& t) { return t.id == track; });
      if (!known) return bad("unknown track " + track, floor.name);
    }
  }
  if (definition.tracks.empty()) return bad("program has no tracks", "track");
  __int128 track_total = 0;
  std::set<std::string> track_ids;
  for (const Track& track : definition.tracks) {
    if (track.id.empty() || !track_ids.insert(track.id).second) {
      return bad("track ids must be unique and non-empty", "track.id");
    }
    if (track.budget <= Credits::Zero()) return bad("track budget must be positive", track.id);
    if (track.award_cap.is_negative() || track.institution_cap.is_negative()) {
      return bad("caps may not be negative", track.id);
    }
    if (track.partial_floor_bp < 0 || track.partial_floor_bp > kBasisPointsFull ||
        (track.partial_floor_bp > 0 && track.partial_step_bp <= 0)) {
      return bad("partial floor outside 0..100% or step not positive", track.id);
    }
    track_total += track.budget.micro();
    int64_t shares = 0;
    for (const TrancheRule& tranche : track.tranches) {
      shares += tranche.share_bp;
      if (tranche.share_bp <= 0) return bad("tranche share must be positive", track.id);
      if (tranche.condition == "start") continue;
      const std::string prefix = "progress_report:";
      if (tranche.condition.rfind(prefix, 0) != 0) {
        return bad("tranche condition must be start or progress_report:N", track.id);
      }
      const std::string number = tranche.condition.substr(prefix.size());
      const auto count = static_cast<int64_t>(definition.obligations.progress_report_months.size());
      if (number.empty() || number.size() > 3 ||
          !std::all_of(number.begin(), number.end(), ::isdigit) || std::stoll(number) < 1 ||
          std::stoll(number) > count) {
        return bad("tranche refers to a progress report the program does not require", track.id);
      }
    }
    if (!track.tranches.empty() && shares != kBasisPointsFull) {
      return bad("tranche shares must add up to 100%", track.id);
    }
  }
  if (track_total > definition.total_budget.micro()) {
    return bad("track budgets add up to more than the total budget", "track.budget");
  }
  const GovernanceRules& governance = definition.governance;
  const OverrideRules& overrides = governance.overrides;
  if (overrides.max_per_call < 0 || overrides.max_per_call > 1000) {
    return bad("overrides per call must be 0..1000", "program.overrides.max_per_call");
  }
  if (overrides.max_budget_bp < 0 || overrides.max_budget_bp > kBasisPointsFull) {
    return bad("override budget share outside 0..100%", "program.overrides.max_budget_percent");
  }
  for (const std::string& reason : overrides.reasons) {
    if (std::find(std::begin(kOverrideReasons), std::end(kOverrideReasons), reason) ==
        std::end(kOverrideReasons)) {
      return bad("unknown override reason " + reason, "program.overrides.reasons");
    }
    if (reason == "strategic" && !overrides.allow_strategic) {
      return bad("strategic overrides are listed but allow_strategic is false",
                 "program.overrides.reasons");
    }
  }
  if (overrides.allowed() && overrides.reasons.empty()) {
    return bad("a program that allows overrides publishes their reason codes",
               "program.overrides.reasons");
  }
  const AppealRules& appeals = governance.appeals;
  if (appeals.window_days < 0 || appeals.window_days > 365) {
    return bad("appeal window must be 0..365 days", "program.appeals.window_days");
  }
  for (const std::string& ground : appeals.grounds) {
    if (std::find(std::begin(kAppealGrounds), std::end(kAppealGrounds), ground) ==
        std::end(kAppealGrounds)) {
      return bad("unknown appeal ground " + ground, "program.appeals.grounds");
    }
  }
  if (appeals.allowed() && appeals.grounds.empty()) {
    return bad("a program that takes appeals publishes their grounds", "program.appeals.grounds");
  }
  if (appeals.reviewers < 1 || appeals.reviewers > 20) {
    return bad("reviewers per appeal must be 1..20", "program.appeals.reviewers");
  }
  if (appeals.reserve.is_negative() ||
      track_total + appeals.reserve.micro() > definition.total_budget.micro()) {
    return bad("track budgets and the appeals reserve add up to more than the total budget",
               "program.appeals.reserve");
  }
  for (const SponsorTie& tie : governance.sponsor_ties) {
    if (tie.institution.empty() == tie.person.empty()) {
      return bad("a sponsor tie names an institution or a person", "program.sponsor_tie");
    }
    if (std::find(std::begin(kSponsorTieKinds), std::end(kSponsorTieKinds), tie.kind) ==
        std::end(kSponsorTieKinds)) {
      return bad("a sponsor tie is employment, funding or equity", "program.sponsor_tie.kind");
    }
  }
  std::set<std::string> call_ids;
  for (const CallDefinition& call : definition.calls) {
    if (call.id.empty() || !call_ids.insert(call.id).second) {
      return bad("call ids must be unique and non-empty", "call.id");
    }
    if (track_ids.count(call.track) == 0) return bad("unknown track " + call.track, call.id);
    if (!(call.opens_us < call.closes_us && call.closes_us <= call.review_deadline_us &&
          call.review_deadline_us <= call.decision_us)) {
      return bad("call dates must be opens < closes <= review deadline <= decision", call.id);
    }
    if (call.reviewers_per_proposal < 1 || call.reviewers_per_proposal > 20) {
      return bad("reviewers per proposal must be 1..20", call.id);
    }
  }
  for (const auto& [type, price] : definition.price_per_chip_hour) {
    if (price <= Credits::Zero()) return bad("price must be positive", type);
  }
  if (definition.award_policy != "mip" && definition.award_policy != "greedy") {
    return bad("award policy must be mip or greedy", "program.award_policy");
  }
  return OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Creation, people, calls.

Result<ProgramState> ProgramState::Create(ProgramDefinition definition, int64_t now_us,
                                          std::string seal_secret) {
  auto owned = std::make_unique<ledger::Ledger>();
  ledger::Ledger* ledger = owned.get();
  ATRIUM_ASSIGN_OR_RETURN(ProgramState state,
                          Create(std::move(definition), now_us, std::move(seal_secret), ledger, 1));
  state.owned_ledger_ = std::move(owned);
  return state;
}

Result<ProgramState> ProgramState::Create(ProgramDefinition definition, int64_t now_us,
                                          std::string seal_secret, ledger::Ledger* ledger,
                                          uint64_t ordinal) {
  ATRIUM_ASSERT(ledger != nullptr && ordinal >= 1 && ordinal < kNamespaceBit,
                "a program needs a ledger and an ordinal >= 1");
  ATRIUM_TRY(ValidateDefinition(definition));
  ProgramState state;
  state.ledger_ = ledger;
  state.ordinal_ = ordinal;
  state.definition_ = std::move(definition);
  const ProgramDefinition& def = state.definition_;
  // Without a secret from the shell, salts can only come from what the core was given.
  state.seal_secret_ =
      seal_secret.empty() ? "atrium-unkeyed-seal\n" + def.id : std::move(seal_secret);
  std::vector<AccountSpec> accounts = {
      {.id = kSponsorAccount, .kind = AccountKind::kSponsor},
      {.id = kProgramPoolAccount,
       .kind = AccountKind::kProgramPool,
       .flags = ledger::kDebitsMustNotExceedCredits},
      {.id = kClusterRevenueAccount, .kind = AccountKind::kClusterRevenue},
  };
  std::vector<TransferSpec> transfers = {{.id = state.NextTransferId(),
                                          .debit_account_id = kSponsorAccount,
                                          .credit_account_id = kProgramPoolAccount,
                                          .amount = def.total_budget,
                                          .code = kCodeFunding,
                                          .flags = ledger::kLinked}};
  for (size_t idx = 0; idx < def.tracks.size(); ++idx) {
    const uint64_t account = kTrackPoolAccountBase + idx;
    accounts.push_back({.id = account,
                        .kind = AccountKind::kTrackPool,
                        .flags = ledger::kDebitsMustNotExceedCredits,
                        .user_data = idx});
    transfers.push_back({.id = state.NextTransferId(),
                         .debit_account_id = kProgramPoolAccount,
                         .credit_account_id = account,
                         .amount = def.tracks[idx].budget,
                         .code = kCodeFunding,
                         .flags = ledger::kLinked});
  }
  const Credits reserve = def.governance.appeals.reserve;
  if (!reserve.is_zero()) {
    // The appeals reserve (docs/governance.md): only programs that keep one have it, so
    // the accounts of every other program are as they were.
    accounts.push_back({.id = kAppealsReserveAccount,
                        .kind = AccountKind::kTrackPool,
                        .flags = ledger::kDebitsMustNotExceedCredits});
    transfers.push_back({.id = state.NextTransferId(),
                         .debit_account_id = kProgramPoolAccount,
                         .credit_account_id = kAppealsReserveAccount,
                         .amount = reserve,
                         .code = kCodeFunding,
                         .flags = ledger::kLinked});
  }
  transfers.back().flags = 0;
  ATRIUM_TRY(state.CreateAccountsOrError(std::move(accounts), now_us));
  ATRIUM_TRY(state.TransferOrError(std::move(transfers), now_us));
  for (const CallDefinition& call : def.calls) state.call_states_[call.id] = CallState::kScheduled;

  json tracks = json::array();
  for (const Track& track : def.tracks) {
    tracks.push_back({{"id", track.id},
                      {"kind", ToString(track.kind)},
                      {"budget", Money(track.budget)},
                      {"award_cap", Money(track.award_cap)},
                      {"institution_cap", Money(track.institution_cap)}});
  }
  json floors = json::array();
  for (const FairnessFloor& floor : def.fairness_floors) {
    floors.push_back({{"name", floor.name},
                      {"topics", floor.topics},
                      {"institution_types", floor.institution_types},
                      {"share_bp", floor.share_bp},
                      {"tracks", floor.tracks}});
  }
  json created = {{"program", def.id},
                  {"name", def.name},
                  {"currency", def.currency},
                  {"total_budget", Money(def.total_budget)},
                  {"tracks", tracks},
                  {"fairness_floors", floors},
                  {"award_policy", def.award_policy}};
  const GovernanceRules& governance = def.governance;
  if (governance.overrides.allowed() || governance.appeals.allowed() ||
      !governance.sponsor_ties.empty()) {
    // The published rules of governance (absent: no overrides, no appeals, no ties).
    json ties = json::array();
    for (const SponsorTie& tie : governance.sponsor_ties) {
      ties.push_back(
          {{"institution", tie.institution}, {"person", tie.person}, {"kind", tie.kind}});
    }
    created["governance"] = {{"overrides",
                              {{"max_per_call", governance.overrides.max_per_call},
                               {"max_budget_bp", governance.overrides.max_budget_bp},
                               {"reasons", governance.overrides.reasons},
                               {"allow_strategic", governance.overrides.allow_strategic}}},
                             {"appeals",
                              {{"window_days", governance.appeals.window_days},
                               {"grounds", governance.appeals.grounds},
                               {"reviewers", governance.appeals.reviewers},
                               {"reserve", Money(governance.appeals.reserve)}}},
                             {"sponsor_ties", ties}};
  }
  state.log_.Append(now_us, "program_created", created);
  return state;
}

Status ProgramState::AddInstitution(Institution institution, int64_t /*now_us*/) {
  if (institution.id.empty() || institution.type.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "institution needs an id and a type", "id");
  }
  if (institutions_.count(institution.id) != 0) {
    return MakeError(ErrorCode::kAlreadyExists, "institution exists", institution.id);
  }
  if (institutions_.size() >= kPeopleMax) {
    return MakeError(ErrorCode::kLimitExceeded, "too many institutions", "id");
  }
  const std::string id = institution.id;
  institutions_.emplace(id, std::move(institution));
  return OkStatus();
}

Status ProgramState::AddPerson(Person person, int64_t /*now_us*/) {
  ATRIUM_TRY(ValidateOrcid(person.id));
  if (people_.count(person.id) != 0) {
    return MakeError(ErrorCode::kAlreadyExists, "person exists", person.id);
  }
  if (institutions_.count(person.institution) == 0) {
    return MakeError(ErrorCode::kNotFound, "unknown institution " + person.institution,
                     "institution");
  }
  if (people_.size() >= kPeopleMax) {
    return MakeError(ErrorCode::kLimitExceeded, "too many people", "id");
  }
  const std::string id = person.id;
  people_.emplace(id, std::move(person));
  return OkStatus();
}

const Track* ProgramState::FindTrack(const std::string& track_id) const {
  for (const Track& track : definition_.tracks) {
    if (track.id == track_id) return &track;
  }
  return nullptr;
}

const CallDefinition* ProgramState::FindCall(const std::string& call_id) const {
  for (const CallDefinition& call : definition_.calls) {
    if (call.id == call_id) return &call;
  }
  return nullptr;
}

CallState ProgramState::call_state(const std::string& call_id) const {
  const auto found = call_states_.find(call_id);
  return found == call_states_.end() ? CallState::kScheduled : found->second;
}

uint64_t ProgramState::TrackPoolAccount(const std::string& track_id) const {
  for (size_t idx = 0; idx < definition_.tracks.size(); ++idx) {
    if (definition_.tracks[idx].id == track_id) return kTrackPoolAccountBase + idx;
  }
  return 0;
}

Credits ProgramState::AccountBalance(uint64_t account) const {
  const auto found = ledger_->FindAccount(AccountId(account));
  return found ? found->balance() : Credits::Zero();
}

Credits ProgramState::AccountAvailable(uint64_t account) const {
  const auto found = ledger_->FindAccount(AccountId(account));
  return found ? found->available() : Credits::Zero();
}

void ProgramState::ForEachAccount(const std::function<void(const ledger::Account&)>& visit) const {
  ledger_->ForEachAccount([&](const ledger::Account& account) {
    if (Owns(account.id)) visit(account);
  });
}

Credits ProgramState::GrantHeld(const Grant& grant) const {
  int64_t held = 0;
  auto add = [&](uint64_t local) {
    if (const auto found = ledger_->FindAccount(AccountId(local))) {
      held += found->debits_pending.micro();
    }
  };
  add(grant.account);
  for (const auto& [student, account] : grant.students) add(account);
  return Credits::FromMicro(held);
}

Credits ProgramState::InstitutionAwarded(const std::string& institution) const {
  const auto found = institution_awarded_.find(institution);
  return found == institution_awarded_.end() ? Credits::Zero() : found->second;
}

const Institution* ProgramState::InstitutionOf(const std::string& person) const {
  const auto found = people_.find(person);
  if (found == people_.end()) return nullptr;
  const auto institution = institutions_.find(found->second.institution);
  return institution == institutions_.end() ? nullptr : &institution->second;
}

Status ProgramState::OpenCall(const std::string& call_id, int64_t now_us) {
  const CallDefinition* call = FindCall(call_id);
  if (call == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", call_id);
  if (call_state(call_id) != CallState::kScheduled) {
    return MakeError(ErrorCode::kInvalidState, "call is not scheduled", call_id);
  }
  if (now_us < call->opens_us || now_us >= call->closes_us) {
    return MakeError(ErrorCode::kCallNotOpen, "outside the call's window", call_id);
  }
  call_states_[call_id] = CallState::kOpen;
  log_.Append(now_us, "call_opened",
              {{"call", call_id}, {"track", call->track}, {"closes_us", call->closes_us}});
  return OkStatus();
}

Status ProgramState::CloseCall(const std::string& call_id, int64_t now_us) {
  const CallDefinition* call = FindCall(call_id);
  if (call == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", call_id);
  if (call_state(call_id) != CallState::kOpen) {
    return MakeError(ErrorCode::kInvalidState, "call is not open", call_id);
  }
  if (now_us < call->closes_us) {
    return MakeError(ErrorCode::kInvalidState, "the call's deadline has not passed", call_id);
  }
  call_states_[call_id] = CallState::kClosed;
  int64_t count = 0;
  for (const auto& [id, proposal] : proposals_) {
    if (proposal.input.call == call_id && proposal.status == ProposalStatus::kSubmitted) ++count;
  }
  log_.Append(now_us, "call_closed", {{"call", call_id}, {"proposals", count}});
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Proposals.

Result<Credits> ProgramState::RequestInCredits(const ProposalInput& input) const {
  Credits total = input.requested;
  if (total.is_negative()) {
    return MakeError(ErrorCode::kInvalidArgument, "negative request", "requested");
  }
  for (const ChipHours& item : input.chip_hours) {
    const auto price = definition_.price_per_chip_hour.find(item.accelerator);
    if (price == definition_.price_per_chip_hour.end()) {
      return MakeError(ErrorCode::kNotFound, "no price for accelerator " + item.accelerator,
                       "chip_hours");
    }
    if (item.chip_hours <= 0) {
      return MakeError(ErrorCode::kInvalidArgument, "chip-hours must be positive", "chip_hours");
    }
    ATRIUM_ASSIGN_OR_RETURN(Credits cost, UsageCost(item.chip_hours, 3600, price->second));
    ATRIUM_ASSIGN_OR_RETURN(total, total.CheckedAdd(cost));
  }
  if (total <= Credits::Zero()) {
    return MakeError(ErrorCode::kInvalidArgument, "request must be positive", "requested");
  }
  return total;
}

Status ProgramState::CheckEligibility(const ProposalInput& input, const Track& track,
                                      const Person& pi) const {
  const EligibilityRules& rules = track.eligibility;
  if (!rules.pi_roles.empty() && !Contains(rules.pi_roles, pi.role)) {
    return MakeError(ErrorCode::kIneligible, "the track does not accept PIs with role " + pi.role,
                     "pi");
  }
  const Institution& institution = institutions_.at(pi.institution);
  if (!rules.institution_types.empty() && !Contains(rules.institution_types, institution.type)) {
    return MakeError(ErrorCode::kIneligible,
                     "the track does not accept institutions of type " + institution.type, "pi");
  }
  if (rules.one_proposal_per_pi) {
    for (const auto& [id, other] : proposals_) {
      if (id != input.id && other.input.call == input.call && other.input.pi == input.pi &&
          other.status != ProposalStatus::kWithdrawn) {
        return MakeError(ErrorCode::kIneligible,
                         "the PI already has proposal " + id + " in this call", "pi");
      }
    }
  }
  return OkStatus();
}

Status ProgramState::SubmitProposal(ProposalInput input, int64_t now_us) {
  if (input.id.empty() || input.id.size() > 64) {
    return MakeError(ErrorCode::kInvalidArgument, "proposal id must be 1..64 characters", "id");
  }
  const CallDefinition* call = FindCall(input.call);
  if (call == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", "call");
  const CallState state = call_state(input.call);
  if (state == CallState::kScheduled) {
    return MakeError(ErrorCode::kCallNotOpen, "the call is not open yet", "call");
  }
  if (state != CallState::kOpen || now_us >= call->closes_us) {
    return MakeError(ErrorCode::kCallClosed, "the call closed; no submissions or edits", "call");
  }
  if (now_us < call->opens_us) {
    return MakeError(ErrorCode::kCallNotOpen, "the call is not open yet", "call");
  }
  const auto existing = proposals_.find(input.id);
  if (existing != proposals_.end() &&
      (existing->second.input.call != input.call || existing->second.input.pi != input.pi ||
       existing->second.status != ProposalStatus::kSubmitted)) {
    return MakeError(ErrorCode::kAlreadyExists,
                     "a proposal with this id exists (edits keep the call and PI)", "id");
  }
  if (existing == proposals_.end() && proposals_.size() >= kProposalsMax) {
    return MakeError(ErrorCode::kLimitExceeded, "too many proposals", "id");
  }
  const auto pi = people_.find(input.pi);
  if (pi == people_.end()) return MakeError(ErrorCode::kNotFound, "unknown PI", "pi");
  if (input.co_investigators.size() > kCoInvestigatorsMax) {
    return MakeError(ErrorCode::kLimitExceeded, "too many co-investigators", "co_investigators");
  }
  for (const std::string& member : input.co_investigators) {
    if (people_.count(member) == 0) {
      return MakeError(ErrorCode::kNotFound, "unknown co-investigator " + member,
                       "co_investigators");
    }
  }
  if (input.topics.empty() || input.topics.size() > kTopicsMax) {
    return MakeError(ErrorCode::kInvalidArgument, "a proposal needs 1..20 topics", "topics");
  }
  for (const std::string& topic : input.topics) {
    if (!Contains(definition_.topics, topic)) {
      return MakeError(ErrorCode::kInvalidArgument, "unknown topic " + topic, "topics");
    }
  }
  if (input.duration_months < 1 || input.duration_months > kDurationMonthsMax) {
    return MakeError(ErrorCode::kInvalidArgument, "duration must be 1..60 months",
                     "duration_months");
  }
  ATRIUM_TRY(CheckText(input.title, "title"));
  ATRIUM_TRY(CheckText(input.abstract, "abstract"));
  ATRIUM_TRY(CheckText(input.open_source_plan, "open_source_plan"));
  ATRIUM_ASSIGN_OR_RETURN(Credits requested, RequestInCredits(input));
  const Track& track = *FindTrack(call->track);
  if (!track.award_cap.is_zero() && requested > track.award_cap) {
    return MakeError(
        ErrorCode::kCapExceeded,
        "request " + Money(requested) + " exceeds the per-award cap " + Money(track.award_cap),
        "requested");
  }
  if (requested > track.budget) {
    return MakeError(ErrorCode::kOverBudget, "request exceeds the track's budget", "requested");
  }
  ATRIUM_TRY(CheckEligibility(input, track, pi->second));

  const Institution& institution = institutions_.at(pi->second.institution);
  json data = {{"proposal", input.id},
               {"call", input.call},
               {"title", input.title},
               {"institution", institution.id},
               {"institution_type", institution.type},
               {"country", institution.country},
               {"topics", input.topics},
               {"requested", Money(requested)},
               {"duration_months", input.duration_months}};
  const bool edit = existing != proposals_.end();
  Seal& seal = proposal_seals_[input.id];
  if (seal.ref.empty()) seal.ref = SealRef("proposal\n" + input.id);
  seal.call = input.call;
  json sealed = CommitSeal(seal, std::move(data));
  Proposal proposal{.input = std::move(input),
                    .institution = institution.id,
                    .requested = requested,
                    .status = ProposalStatus::kSubmitted,
                    .submitted_us = now_us};
  const std::string id = proposal.input.id;
  proposals_[id] = std::move(proposal);
  int64_t in_call = 0;
  for (const auto& [other_id, other] : proposals_) {
    if (other.input.call == seal.call && other.status == ProposalStatus::kSubmitted) ++in_call;
  }
  sealed["proposals"] = in_call;
  seal.committed_in =
      log_.Append(now_us, edit ? "proposal_edited" : "proposal_submitted", sealed).seq;
  return OkStatus();
}

Status ProgramState::WithdrawProposal(const std::string& proposal_id, int64_t now_us) {
  const auto found = proposals_.find(proposal_id);
  if (found == proposals_.end()) return MakeError(ErrorCode::kNotFound, "unknown proposal", "id");
  Proposal& proposal = found->second;
  if (proposal.status != ProposalStatus::kSubmitted &&
      proposal.status != ProposalStatus::kInReview) {
    return MakeError(ErrorCode::kInvalidState, "only a pending proposal can be withdrawn", "id");
  }
  if (call_state(proposal.input.call) == CallState::kDecided) {
    return MakeError(ErrorCode::kInvalidState, "the call is decided", "id");
  }
  proposal.status = ProposalStatus::kWithdrawn;
  log_.Append(now_us, "proposal_withdrawn",
              {{"call", proposal.input.call}, {"ref", proposal_seals_.at(proposal_id).ref}});
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Review.

Status ProgramState::DeclareConflict(const std::string& reviewer, const std::string& proposal_id,
                                     std::string note, int64_t now_us) {
  const auto person = people_.find(reviewer);
  if (person == people_.end() || !person->second.reviewer) {
    return MakeError(ErrorCode::kNotFound, "unknown reviewer", "reviewer");
  }
  const auto proposal = proposals_.find(proposal_id);
  if (proposal == proposals_.end()) {
    return MakeError(ErrorCode::kNotFound, "unknown proposal", "proposal");
  }
  ATRIUM_TRY(CheckText(note, "note"));
  for (const Review& review : reviews_) {
    if (review.reviewer == reviewer && review.proposal == proposal_id) {
      return MakeError(ErrorCode::kInvalidState, "the reviewer already reviewed the proposal",
                       "proposal");
    }
  }
  for (const Conflict& conflict : declared_conflicts_) {
    if (conflict.reviewer == reviewer && conflict.proposal == proposal_id) {
      return MakeError(ErrorCode::kAlreadyExists, "conflict already declared", "proposal");
    }
  }
  const Conflict conflict{reviewer, proposal_id, ConflictReason::kDeclared, std::move(note)};
  declared_conflicts_.push_back(conflict);
  // A conflict found after assignment removes the assignment.
  std::erase_if(assignments_, [&](const Assignment& assignment) {
    return assignment.reviewer == reviewer && assignment.proposal == proposal_id;
  });
  if (auto assigned = assigned_by_reviewer_.find(reviewer);
      assigned != assigned_by_reviewer_.end()) {
    assigned->second.erase(proposal_id);
    if (assigned->second.empty()) assigned_by_reviewer_.erase(assigned);
  }
  conflicts_.push_back(conflict);
  // Sealed like the proposal: which proposal is not public before the decision.
  log_.Append(
      now_us, "conflict_recorded",
      {{"call", proposal->second.input.call}, {"reason", ToString(ConflictReason::kDeclared)}});
  return OkStatus();
}

std::vector<ProposalProfile> ProgramState::ProposalProfiles(const std::string& call_id) const {
  std::vector<ProposalProfile> profiles;
  for (const auto& [id, proposal] : proposals_) {
    if (proposal.input.call != call_id || proposal.status != ProposalStatus::kSubmitted) continue;
    ProposalProfile profile{.id = id, .topics = proposal.input.topics};
    profile.people.push_back(proposal.input.pi);
    for (const std::string& member : proposal.input.co_investigators) {
      profile.people.push_back(member);
    }
    for (const std::string& member : profile.people) {
      const Person& person = people_.at(member);
      if (!Contains(profile.institutions, person.institution)) {
        profile.institutions.push_back(person.institution);
      }
      for (const std::string& other : person.collaborators) profile.collaborators.push_back(other);
    }
    profiles.push_back(std::move(profile));
  }
  return profiles;
}

std::vector<ReviewerProfile> ProgramState::ReviewerProfiles() const {
  std::vector<ReviewerProfile> profiles;
  for (const auto& [id, person] : people_) {
    if (!person.reviewer) continue;
    profiles.push_back({id, person.institution, person.expertise, person.collaborators});
  }
  return profiles;
}

Result<AssignmentStats> ProgramState::AssignReviewers(const std::string& call_id, int64_t now_us) {
  const CallDefinition* call = FindCall(call_id);
  if (call == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", "call");
  if (call_state(call_id) != CallState::kClosed) {
    return MakeError(ErrorCode::kInvalidState, "reviewers are assigned once the call closes",
                     "call");
  }
  const std::vector<ProposalProfile> proposals = ProposalProfiles(call_id);
  if (proposals.empty()) {
    return MakeError(ErrorCode::kInvalidState, "no submitted proposals to assign", "call");
  }
  const std::vector<ReviewerProfile> reviewers = ReviewerProfiles();
  std::vector<Conflict> declared;
  for (const Conflict& conflict : declared_conflicts_) {
    if (proposals_.at(conflict.proposal).input.call == call_id) declared.push_back(conflict);
  }
  std::vector<Conflict> conflicts = FindConflicts(reviewers, proposals, declared);
  AssignmentStats stats;
  ATRIUM_ASSIGN_OR_RETURN(std::vector<Assignment> assignments,
                          program::AssignReviewers(reviewers, proposals, conflicts,
                                                   call->reviewers_per_proposal, &stats));

  // Accepted: record conflicts found automatically (declared ones are recorded already).
  for (Conflict& conflict : conflicts) {
    if (conflict.reason == ConflictReason::kDeclared) continue;
    log_.Append(now_us, "conflict_recorded",
                {{"call", call_id}, {"reason", ToString(conflict.reason)}});
    conflicts_.push_back(std::move(conflict));
  }
  for (const ProposalProfile& profile : proposals) {
    proposals_.at(profile.id).status = ProposalStatus::kInReview;
  }
  for (Assignment& assignment : assignments) {
    assigned_by_reviewer_[assignment.reviewer].insert(assignment.proposal);
    assignments_.push_back(std::move(assignment));
  }
  log_.Append(now_us, "reviewers_assigned",
              {{"call", call_id},
               {"proposals", static_cast<int64_t>(proposals.size())},
               {"reviewers_per_proposal", call->reviewers_per_proposal},
               {"load_min", stats.load_min},
               {"load_max", stats.load_max},
               {"assignments_with_expertise", stats.with_expertise}});
  return stats;
}

Status ProgramState::SubmitReview(const std::string& reviewer, const std::string& proposal_id,
                                  std::vector<int64_t> scores, std::string comment,
                                  int64_t now_us) {
  const auto person = people_.find(reviewer);
  if (person == people_.end() || !person->second.reviewer) {
    return MakeError(ErrorCode::kNotFound, "unknown reviewer", "reviewer");
  }
  const auto proposal = proposals_.find(proposal_id);
  if (proposal == proposals_.end()) {
    return MakeError(ErrorCode::kNotFound, "unknown proposal", "proposal");
  }
  for (const Conflict& conflict : conflicts_) {
    if (conflict.reviewer == reviewer && conflict.proposal == proposal_id) {
      return MakeError(
          ErrorCode::kConflictOfInterest,
          std::string("the reviewer is in conflict: ") + std::string(ToString(conflict.reason)),
          "reviewer");
    }
  }
  const std::set<std::string>* assigned_to = AssignedTo(reviewer);
  const bool assigned = assigned_to != nullptr && assigned_to->contains(proposal_id);
  if (!assigned) {
    return MakeError(ErrorCode::kNotAssigned, "the reviewer is not assigned to the proposal",
                     "reviewer");
  }
  const CallDefinition& call = *FindCall(proposal->second.input.call);
  if (call_state(call.id) != CallState::kClosed ||
      proposal->second.status != ProposalStatus::kInReview) {
    return MakeError(ErrorCode::kInvalidState, "the proposal is not in review", "proposal");
  }
  if (now_us > call.review_deadline_us) {
    return MakeError(ErrorCode::kDeadlinePassed, "the review deadline has passed", "proposal");
  }
  ATRIUM_TRY(ValidateScores(definition_.rubric, scores));
  ATRIUM_TRY(CheckText(comment, "comment"));

  const double raw = RawScore(definition_.rubric, scores);
  json content = {{"proposal", proposal_id}, {"scores", scores}, {"raw_milli", Milli(raw)}};
  auto existing = std::find_if(reviews_.begin(), reviews_.end(), [&](const Review& review) {
    return review.reviewer == reviewer && review.proposal == proposal_id;
  });
  Review review{.reviewer = reviewer,
                .proposal = proposal_id,
                .scores = std::move(scores),
                .comment = std::move(comment),
                .submitted_us = now_us,
                .raw = raw,
                .normalized = raw};
  if (existing != reviews_.end()) {
    *existing = std::move(review);
    content["revised"] = true;
  } else {
    reviews_.push_back(std::move(review));
  }
  Seal& seal = review_seals_[{reviewer, proposal_id}];
  if (seal.ref.empty()) seal.ref = SealRef("review\n" + reviewer + "\n" + proposal_id);
  seal.call = call.id;
  seal.committed_in =
      log_.Append(now_us, "review_submitted", CommitSeal(seal, std::move(content))).seq;
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// The decision.

Result<AwardProblem> ProgramState::BuildProblem(
    const std::string& call_id, std::vector<std::string>* candidate_ids,
    std::map<std::string, double>* merit, const WhatIfInput* what_if,
    const std::vector<SponsorOverride>* overrides) const {
  const CallDefinition& call = *FindCall(call_id);
  std::set<std::string> vetoed;
  std::set<std::string> fixed_in;
  if (overrides != nullptr) {
    for (const SponsorOverride& entry : *overrides) {
      (entry.kind == OverrideKind::kVeto ? vetoed : fixed_in).insert(entry.proposal);
    }
  }
  const Track& track = *FindTrack(call.track);
  std::vector<Review> call_reviews;
  for (const Review& review : reviews_) {
    if (proposals_.at(review.proposal).input.call == call_id) call_reviews.push_back(review);
  }
  NormalizeScores(definition_.rubric, &call_reviews);
  *merit = MeritByProposal(call_reviews);

  for (const auto& [id, proposal] : proposals_) {
    if (proposal.input.call == call_id && proposal.status == ProposalStatus::kInReview &&
        merit->count(id) != 0) {
      candidate_ids->push_back(id);
    }
  }
  std::stable_sort(
      candidate_ids->begin(), candidate_ids->end(),
      [&](const std::string& a, const std::string& b) { return merit->at(a) > merit->at(b); });
  AwardProblem problem;
  problem.budget = AccountAvailable(TrackPoolAccount(track.id));
  if (what_if != nullptr && what_if->budget.has_value()) problem.budget = *what_if->budget;
  std::vector<const FairnessFloor*> floors;
  for (const FairnessFloor& floor : definition_.fairness_floors) {
    if (!floor.tracks.empty() && !Contains(floor.tracks, track.id)) continue;
    floors.push_back(&floor);
    int64_t share_bp = floor.share_bp;
    if (what_if != nullptr) {
      const auto changed = what_if->floor_bp.find(floor.name);
      if (changed != what_if->floor_bp.end()) share_bp = changed->second;
    }
    problem.floors.push_back({floor.name, share_bp});
  }
  std::map<std::string, int> institution_index;
  for (const std::string& id : *candidate_ids) {
    const Proposal& proposal = proposals_.at(id);
    const Institution& institution = institutions_.at(proposal.institution);
    AwardCandidate candidate{.id = id, .merit = merit->at(id), .requested = proposal.requested};
    if (track.partial_floor_bp > 0) {
      for (int64_t bp = track.partial_floor_bp; bp < kBasisPointsFull;
           bp += track.partial_step_bp) {
        // Partial levels are whole credits, so amounts stay round.
        const Credits level =
            Credits::FromWhole(ScaleBp(proposal.requested, bp).micro() / Credits::kMicroPerCredit);
        if (level > Credits::Zero() && level < proposal.requested &&
            (candidate.levels.empty() || level > candidate.levels.back())) {
          candidate.levels.push_back(level);
        }
      }
    }
    candidate.levels.push_back(proposal.requested);
    candidate.excluded = vetoed.contains(id);
    if (fixed_in.contains(id)) {
      candidate.fixed = true;
      candidate.levels = {proposal.requested};
    }
    if (!track.institution_cap.is_zero()) {
      auto [slot, added] = institution_index.emplace(
          proposal.institution, static_cast<int>(problem.institution_room.size()));
      if (added) {
        const int64_t room =
            track.institution_cap.micro() - InstitutionAwarded(proposal.institution).micro();
        problem.institution_room.push_back(Credits::FromMicro(std::max<int64_t>(room, 0)));
      }
      candidate.institution = slot->second;
    }
    for (const FairnessFloor* floor : floors) {
      bool member = Contains(floor->institution_types, institution.type);
      for (const std::string& topic : proposal.input.topics) {
        member = member || Contains(floor->topics, topic);
      }
      candidate.in_floor.push_back(member);
    }
    problem.candidates.push_back(std::move(candidate));
  }
  // Lower each floor to what its members can reach (see FloorOutcome).
  for (size_t floor_idx = 0; floor_idx < problem.floors.size(); ++floor_idx) {
    std::vector<__int128> demand(problem.institution_room.size(), 0);
    __int128 reachable = 0;
    __int128 fixed_outside = 0;  // sponsor additions outside the floor
    for (const AwardCandidate& candidate : problem.candidates) {
      if (candidate.fixed && !candidate.in_floor[floor_idx]) {
        fixed_outside += candidate.requested.micro();
      }
      if (!candidate.in_floor[floor_idx] || candidate.excluded) continue;
      if (candidate.institution < 0) {
        reachable += candidate.requested.micro();
      } else {
        demand[static_cast<size_t>(candidate.institution)] += candidate.requested.micro();
      }
    }
    for (size_t inst = 0; inst < demand.size(); ++inst) {
      reachable += std::min<__int128>(demand[inst], problem.institution_room[inst].micro());
    }
    reachable = std::min<__int128>(reachable, problem.budget.micro());
    if (problem.budget.micro() > 0) {
      const auto reachable_bp =
          static_cast<int64_t>(reachable * kBasisPointsFull / problem.budget.micro());
      problem.floors[floor_idx].share_bp =
          std::min(problem.floors[floor_idx].share_bp, reachable_bp);
    }
    if (fixed_outside > 0) {
      // Additions outside the floor are paid whatever happens: the floor's share of the
      // total can reach at most members / (members + additions outside it).
      const __int128 members =
          std::min<__int128>(reachable, problem.budget.micro() - fixed_outside);
      const auto reach_bp =
          members <= 0
              ? int64_t{0}
              : static_cast<int64_t>(members * kBasisPointsFull / (members + fixed_outside));
      problem.floors[floor_idx].share_bp = std::min(problem.floors[floor_idx].share_bp, reach_bp);
    }
  }
  return problem;
}

void ProgramState::ExplainOutcomes(const AwardProblem& problem, const AwardSolution& solution,
                                   const std::vector<std::string>& candidate_ids,
                                   const std::map<std::string, double>& merit,
                                   Decision* decision) const {
  int64_t budget_left = problem.budget.micro();
  std::vector<int64_t> room_left;
  for (Credits room : problem.institution_room) room_left.push_back(room.micro());
  double funded_merit_min = 1e300;
  for (size_t idx = 0; idx < candidate_ids.size(); ++idx) {
    const int64_t amount = solution.awarded[idx].micro();
    budget_left -= amount;
    const int inst = problem.candidates[idx].institution;
    if (inst >= 0) room_left[static_cast<size_t>(inst)] -= amount;
    if (amount > 0) funded_merit_min = std::min(funded_merit_min, problem.candidates[idx].merit);
  }
  for (size_t idx = 0; idx < candidate_ids.size(); ++idx) {
    const AwardCandidate& candidate = problem.candidates[idx];
    const Credits awarded = solution.awarded[idx];
    ProposalOutcome outcome{.proposal = candidate.id,
                            .rank = static_cast<int64_t>(idx) + 1,
                            .merit = candidate.merit,
                            .requested = candidate.requested,
                            .awarded = awarded};
    const int64_t room = candidate.institution >= 0
                             ? room_left[static_cast<size_t>(candidate.institution)]
                             : INT64_MAX;
    const auto fits = [&](Credits level) {
      return level.micro() - awarded.micro() <= budget_left &&
             level.micro() - awarded.micro() <= room;
    };
    char score[32];
    std::snprintf(score, sizeof(score), "%.2f", candidate.merit);
    const std::string rank_text = "rank " + std::to_string(outcome.rank) + ", score " + score;
    if (awarded == candidate.requested) {
      outcome.rationale = Rationale::kFunded;
      outcome.explanation = "funded in full: " + rank_text + ", " + Money(awarded) + " credits";
    } else if (!awarded.is_zero()) {
      const auto next = std::upper_bound(candidate.levels.begin(), candidate.levels.end(), awarded);
      const int64_t step = next->micro() - awarded.micro();
      outcome.rationale = step > room          ? Rationale::kCutInstitutionCap
                          : step > budget_left ? Rationale::kCutBudget
                                               : Rationale::kCutFloor;
      outcome.explanation = "funded in part (" + Money(awarded) + " of " +
                            Money(candidate.requested) + "): " + rank_text + "; bound by " +
                            std::string(ToString(outcome.rationale)).substr(4);
    } else if (fits(candidate.levels.front())) {
      outcome.rationale =
          candidate.merit <= 0 ? Rationale::kDeclinedBelowLine : Rationale::kDeclinedFloor;
      outcome.explanation = rank_text + "; funding it would break a fairness floor";
      if (candidate.merit <= 0) outcome.explanation = rank_text + "; no merit above zero";
    } else if (candidate.levels.front().micro() > room) {
      outcome.rationale = Rationale::kDeclinedInstitutionCap;
      outcome.explanation = rank_text + "; the institution's cap leaves " +
                            Money(Credits::FromMicro(std::max<int64_t>(room, 0))) + " credits";
    } else if (candidate.merit < funded_merit_min) {
      outcome.rationale = Rationale::kDeclinedBelowLine;
      outcome.explanation = rank_text + "; below the funded line";
    } else {
      outcome.rationale = Rationale::kDeclinedBudget;
      outcome.explanation = rank_text + "; the budget left (" +
                            Money(Credits::FromMicro(budget_left)) + ") does not cover it";
    }
    decision->outcomes.push_back(std::move(outcome));
  }
  // Proposals without a ranking: withdrawn, or no review (every reviewer conflicted).
  for (const auto& [id, proposal] : proposals_) {
    if (proposal.input.call != decision->call || merit.count(id) != 0) continue;
    ProposalOutcome outcome{.proposal = id, .requested = proposal.requested};
    if (proposal.status == ProposalStatus::kWithdrawn) {
      outcome.rationale = Rationale::kDeclinedWithdrawn;
      outcome.explanation = "withdrawn by the applicant";
    } else {
      outcome.rationale = Rationale::kDeclinedNoReviews;
      outcome.explanation = "no review was submitted (conflicts or missed deadline)";
    }
    decision->outcomes.push_back(std::move(outcome));
  }
}

Result<Decision> ProgramState::SolveDecision(const std::string& call_id,
                                             const std::string& policy_name,
                                             const AwardOptions& options,
                                             const WhatIfInput* what_if, int64_t now_us,
                                             Credits* budget,
                                             const std::vector<SponsorOverride>* overrides) const {
  const CallDefinition* call = FindCall(call_id);
  if (call == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", "call");
  if (call_state(call_id) != CallState::kClosed) {
    return MakeError(ErrorCode::kInvalidState, "a decision is drafted for a closed, undecided call",
                     "call");
  }
  ATRIUM_ASSIGN_OR_RETURN(
      std::unique_ptr<AwardPolicy> policy,
      MakeAwardPolicy(policy_name.empty() ? definition_.award_policy : policy_name, options));
  std::vector<std::string> candidate_ids;
  std::map<std::string, double> merit;
  ATRIUM_ASSIGN_OR_RETURN(AwardProblem problem,
                          BuildProblem(call_id, &candidate_ids, &merit, what_if, overrides));
  if (budget != nullptr) *budget = problem.budget;
  ATRIUM_ASSIGN_OR_RETURN(AwardSolution solution, SolveOnTape(*policy, problem, options.tape));
  const Status check = CheckSolution(problem, solution.awarded);
  if (!check.ok() && overrides != nullptr && !overrides->empty()) {
    return MakeError(check.error().code,
                     "the overrides leave no award that keeps the budget, caps and floors: " +
                         check.error().message,
                     "proposal");
  }
  if (!check.ok()) {
    return MakeError(ErrorCode::kSolverFailed,
                     "the award policy returned an infeasible answer: " + check.error().message);
  }
  Decision decision{.call = call_id,
                    .policy = solution.policy,
                    .optimal = solution.optimal,
                    .objective = solution.objective,
                    .bound = solution.bound,
                    .gap = solution.gap(),
                    .drafted_us = now_us};
  __int128 total = 0;
  for (Credits amount : solution.awarded) total += amount.micro();
  decision.total_awarded = Credits::FromMicro(static_cast<int64_t>(total));
  ExplainOutcomes(problem, solution, candidate_ids, merit, &decision);
  for (size_t floor_idx = 0; floor_idx < problem.floors.size(); ++floor_idx) {
    Credits members;
    for (size_t idx = 0; idx < problem.candidates.size(); ++idx) {
      if (problem.candidates[idx].in_floor[floor_idx]) {
        members = Credits::FromMicro(members.micro() + solution.awarded[idx].micro());
      }
    }
    const int64_t achieved = ShareBp(members, decision.total_awarded);
    const FairnessFloor& rule = *std::find_if(
        definition_.fairness_floors.begin(), definition_.fairness_floors.end(),
        [&](const FairnessFloor& floor) { return floor.name == problem.floors[floor_idx].name; });
    int64_t required_bp = rule.share_bp;
    if (what_if != nullptr) {
      const auto changed = what_if->floor_bp.find(rule.name);
      if (changed != what_if->floor_bp.end()) required_bp = changed->second;
    }
    decision.floors.push_back(
        {rule.name, required_bp, problem.floors[floor_idx].share_bp, achieved,
         static_cast<__int128>(members.micro()) * kBasisPointsFull >=
             static_cast<__int128>(decision.total_awarded.micro()) * required_bp});
  }
  return decision;
}

Result<Decision> ProgramState::DraftDecision(const std::string& call_id, int64_t now_us,
                                             const std::string& policy_name,
                                             const AwardOptions& options) {
  const auto call_overrides = overrides_.find(call_id);
  ATRIUM_ASSIGN_OR_RETURN(
      Decision decision,
      call_overrides == overrides_.end() || call_overrides->second.empty()
          ? SolveDecision(call_id, policy_name, options, nullptr, now_us, nullptr)
          : SolveWithOverrides(call_id, policy_name, options, call_overrides->second, now_us));

  // Accepted: keep the normalized figures on the reviews and the draft.
  std::vector<Review> call_reviews;
  for (const Review& review : reviews_) {
    if (proposals_.at(review.proposal).input.call == call_id) call_reviews.push_back(review);
  }
  NormalizeScores(definition_.rubric, &call_reviews);
  size_t next = 0;
  for (Review& review : reviews_) {
    if (proposals_.at(review.proposal).input.call == call_id) review = call_reviews[next++];
  }
  // The call is still under review: the draft's figures (amounts, floors) are published
  // with the committed decision, the draft itself only as a count.
  log_.Append(now_us, "decision_drafted",
              {{"call", call_id},
               {"policy", decision.policy},
               {"candidates", static_cast<int64_t>(decision.outcomes.size())}});
  decisions_[call_id] = decision;
  return decision;
}

Result<std::vector<AwardProblem>> ProgramState::DraftProblems(const std::string& call_id) const {
  const CallDefinition* call = FindCall(call_id);
  if (call == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", "call");
  if (call_state(call_id) != CallState::kClosed) {
    return MakeError(ErrorCode::kInvalidState, "a decision is drafted for a closed, undecided call",
                     "call");
  }
  const auto call_overrides = overrides_.find(call_id);
  return ProblemsWith(call_id, call_overrides == overrides_.end() ? std::vector<SponsorOverride>{}
                                                                  : call_overrides->second);
}

Result<std::vector<AwardProblem>> ProgramState::OverrideProblems(const std::string& call_id,
                                                                 const std::string& proposal_id,
                                                                 OverrideKind kind) const {
  if (FindCall(call_id) == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", "call");
  const auto draft = decisions_.find(call_id);
  if (draft == decisions_.end() || draft->second.committed ||
      call_state(call_id) != CallState::kClosed) {
    return MakeError(ErrorCode::kInvalidState,
                     "overrides apply to a drafted decision before it is committed", "call");
  }
  if (!proposals_.contains(proposal_id)) {
    return MakeError(ErrorCode::kNotFound, "no proposal " + proposal_id + " in the call",
                     "proposal");
  }
  const auto call_overrides = overrides_.find(call_id);
  std::vector<SponsorOverride> next;
  if (call_overrides != overrides_.end()) next = call_overrides->second;
  next.push_back({.call = call_id, .proposal = proposal_id, .kind = kind});
  return ProblemsWith(call_id, next);
}

// The call's problem, then (with overrides) the problem with them: the order
// SolveWithOverrides solves them in.
Result<std::vector<AwardProblem>> ProgramState::ProblemsWith(
    const std::string& call_id, const std::vector<SponsorOverride>& overrides) const {
  std::vector<AwardProblem> problems;
  std::vector<std::string> candidate_ids;
  std::map<std::string, double> merit;
  ATRIUM_ASSIGN_OR_RETURN(AwardProblem base, BuildProblem(call_id, &candidate_ids, &merit));
  problems.push_back(std::move(base));
  if (!overrides.empty()) {
    candidate_ids.clear();
    merit.clear();
    ATRIUM_ASSIGN_OR_RETURN(AwardProblem overridden,
                            BuildProblem(call_id, &candidate_ids, &merit, nullptr, &overrides));
    problems.push_back(std::move(overridden));
  }
  return problems;
}

Result<WhatIfResult> ProgramState::WhatIf(const std::string& call_id, const WhatIfInput& in) const {
  const CallDefinition* call = FindCall(call_id);
  if (call == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", "call");
  if (call_state(call_id) != CallState::kClosed) {
    return MakeError(ErrorCode::kInvalidState, "a decision is drafted for a closed, undecided call",
                     "call");
  }
  if (in.budget.has_value() && in.budget->is_negative()) {
    return MakeError(ErrorCode::kInvalidArgument, "a what-if budget cannot be negative", "budget");
  }
  for (const auto& change : in.floor_bp) {
    const std::string& name = change.first;
    const int64_t share_bp = change.second;
    const auto rule =
        std::find_if(definition_.fairness_floors.begin(), definition_.fairness_floors.end(),
                     [&](const FairnessFloor& floor) { return floor.name == name; });
    if (rule == definition_.fairness_floors.end()) {
      return MakeError(ErrorCode::kInvalidArgument, "unknown fairness floor '" + name + "'",
                       "floor");
    }
    if (!rule->tracks.empty() && !Contains(rule->tracks, call->track)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "fairness floor '" + name + "' does not apply to this call's track",
                       "floor");
    }
    if (share_bp < 0 || share_bp > kBasisPointsFull) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "fairness floor '" + name + "': a share is 0 to 10000 basis points",
                       "floor");
    }
  }
  WhatIfResult result;
  ATRIUM_ASSIGN_OR_RETURN(result.draft,
                          SolveDecision(call_id, in.policy, in.options, &in, 0, &result.budget));
  return result;
}

Status ProgramState::CreateAccountsOrError(std::vector<AccountSpec> accounts, int64_t now_us) {
  for (AccountSpec& account : accounts) account.id = AccountId(static_cast<uint64_t>(account.id));
  const std::vector<ledger::EventFailure> failures = ledger_->CreateAccounts(accounts, now_us);
  if (failures.empty()) return OkStatus();
  return MakeError(failures.front().code, "the ledger refused a program account");
}

Status ProgramState::TransferOrError(std::vector<TransferSpec> transfers, int64_t now_us) {
  // Local numbers to the program's id space in the shared ledger.
  for (TransferSpec& transfer : transfers) {
    transfer.id = TransferId(static_cast<uint64_t>(transfer.id));
    transfer.debit_account_id = AccountId(static_cast<uint64_t>(transfer.debit_account_id));
    transfer.credit_account_id = AccountId(static_cast<uint64_t>(transfer.credit_account_id));
    transfer.pending_id = TransferId(static_cast<uint64_t>(transfer.pending_id));
  }
  const std::vector<ledger::EventFailure> failures = ledger_->CreateTransfers(transfers, now_us);
  if (failures.empty()) return OkStatus();
  ErrorCode code = failures.front().code;
  for (const ledger::EventFailure& failure : failures) {
    if (failure.code != ErrorCode::kLinkedEventFailed) {
      code = failure.code;
      break;
    }
  }
  return MakeError(code, "the ledger refused the transfer");
}

Status ProgramState::CommitDecision(const std::string& call_id, int64_t now_us) {
  const auto found = decisions_.find(call_id);
  if (found == decisions_.end()) {
    return MakeError(ErrorCode::kNotFound, "no drafted decision for the call", "call");
  }
  if (found->second.committed || call_state(call_id) != CallState::kClosed) {
    return MakeError(ErrorCode::kInvalidState, "the decision is already committed", "call");
  }
  const Decision& draft = found->second;
  const CallDefinition& call = *FindCall(call_id);
  const Track& track = *FindTrack(call.track);
  const uint64_t pool = TrackPoolAccount(track.id);

  // Re-check every budget and cap against the state as it is now.
  if (draft.total_awarded > AccountAvailable(pool)) {
    return MakeError(ErrorCode::kOverBudget,
                     "the decision awards " + Money(draft.total_awarded) +
                         " but the track pool has " + Money(AccountAvailable(pool)),
                     "call");
  }
  std::map<std::string, __int128> per_institution;
  for (const ProposalOutcome& outcome : draft.outcomes) {
    if (outcome.awarded.is_zero()) continue;
    if (!track.award_cap.is_zero() && outcome.awarded > track.award_cap) {
      return MakeError(ErrorCode::kCapExceeded, "an award exceeds the per-award cap",
                       outcome.proposal);
    }
    per_institution[proposals_.at(outcome.proposal).institution] += outcome.awarded.micro();
  }
  if (!track.institution_cap.is_zero()) {
    for (const auto& [institution, amount] : per_institution) {
      if (amount + InstitutionAwarded(institution).micro() > track.institution_cap.micro()) {
        return MakeError(
            ErrorCode::kCapExceeded,
            "awards to " + institution + " would exceed its cap of " + Money(track.institution_cap),
            institution);
      }
    }
  }

  // Accounts first (an empty account moves no credits), then one linked batch.
  std::vector<AccountSpec> accounts;
  std::vector<TransferSpec> transfers;
  std::vector<Grant> grants;
  uint64_t next_account = next_account_;
  uint64_t next_transfer = next_transfer_;
  const AccountKind kind =
      track.kind == TrackKind::kEducation ? AccountKind::kCourse : AccountKind::kGrant;
  for (const ProposalOutcome& outcome : draft.outcomes) {
    if (outcome.awarded.is_zero()) continue;
    const Proposal& proposal = proposals_.at(outcome.proposal);
    Grant grant{.id = "G-" + outcome.proposal,
                .proposal = outcome.proposal,
                .call = call_id,
                .track = track.id,
                .pi = proposal.input.pi,
                .institution = proposal.institution,
                .awarded = outcome.awarded,
                .start_us = now_us,
                .end_us = now_us + proposal.input.duration_months * kMicrosPerMonth,
                .account = next_account++};
    grant.members.push_back(proposal.input.pi);
    for (const std::string& member : proposal.input.co_investigators)
      grant.members.push_back(member);
    accounts.push_back(
        {.id = grant.account, .kind = kind, .flags = ledger::kDebitsMustNotExceedCredits});
    std::vector<TrancheRule> rules = track.tranches;
    if (rules.empty()) rules.push_back({kBasisPointsFull, "start"});
    int64_t left = outcome.awarded.micro();
    for (size_t idx = 0; idx < rules.size(); ++idx) {
      const int64_t amount =
          idx + 1 == rules.size() ? left : ScaleBp(outcome.awarded, rules[idx].share_bp).micro();
      left -= amount;
      if (amount <= 0) continue;
      const bool at_start = rules[idx].condition == "start";
      const uint64_t transfer = next_transfer++;
      transfers.push_back(
          {.id = transfer,
           .debit_account_id = pool,
           .credit_account_id = grant.account,
           .amount = Credits::FromMicro(amount),
           .code = kCodeAward,
           .flags = static_cast<uint16_t>(ledger::kLinked | (at_start ? 0 : ledger::kPending))});
      grant.tranches.push_back(
          {Credits::FromMicro(amount), rules[idx].condition, at_start, at_start ? 0 : transfer});
    }
    grants.push_back(std::move(grant));
  }
  if (!transfers.empty()) {
    transfers.back().flags = static_cast<uint16_t>(transfers.back().flags & ~ledger::kLinked);
    ATRIUM_TRY(CreateAccountsOrError(std::move(accounts), now_us));
    ATRIUM_TRY(TransferOrError(std::move(transfers), now_us));
  }
  next_account_ = next_account;
  next_transfer_ = next_transfer;

  // Accepted: statuses, grants, obligations and the public record.
  Decision& decision = found->second;
  decision.committed = true;
  decision.committed_us = now_us;
  call_states_[call_id] = CallState::kDecided;
  json committed = DecisionFigures(decision);
  committed["call"] = call_id;
  committed["grants"] = static_cast<int64_t>(grants.size());
  const auto call_overrides = overrides_.find(call_id);
  const bool overridden = call_overrides != overrides_.end() && !call_overrides->second.empty();
  if (overridden) committed["overrides"] = static_cast<int64_t>(call_overrides->second.size());
  log_.Append(now_us, "decision_committed", committed);
  RevealSeals(call_id, now_us);
  LogOverrides(decision, now_us);
  for (const ProposalOutcome& outcome : decision.outcomes) {
    Proposal& proposal = proposals_.at(outcome.proposal);
    if (proposal.status != ProposalStatus::kWithdrawn) {
      proposal.status =
          outcome.awarded.is_zero() ? ProposalStatus::kDeclined : ProposalStatus::kAwarded;
    }
    const Institution& institution = institutions_.at(proposal.institution);
    json decided = {
        {"proposal", outcome.proposal},        {"rank", outcome.rank},
        {"merit_milli", Milli(outcome.merit)}, {"requested", Money(outcome.requested)},
        {"awarded", Money(outcome.awarded)},   {"rationale", ToString(outcome.rationale)},
        {"explanation", outcome.explanation},  {"institution", institution.id},
        {"topics", proposal.input.topics}};
    if (overridden) {
      decided["base_awarded"] = Money(outcome.base_awarded);
      decided["overrides"] = outcome.overrides;
    }
    if (const std::string tie = SponsorTieOf(proposal); !tie.empty()) decided["sponsor_tie"] = tie;
    log_.Append(now_us, "proposal_decided", decided);
  }
  for (Grant& grant : grants) {
    institution_awarded_[grant.institution] =
        Credits::FromMicro(InstitutionAwarded(grant.institution).micro() + grant.awarded.micro());
    json tranches = json::array();
    for (const Tranche& tranche : grant.tranches) {
      tranches.push_back({{"amount", Money(tranche.amount)},
                          {"condition", tranche.condition},
                          {"released", tranche.released}});
    }
    log_.Append(now_us, "grant_created",
                {{"grant", grant.id},
                 {"proposal", grant.proposal},
                 {"institution", grant.institution},
                 {"track", grant.track},
                 {"amount", Money(grant.awarded)},
                 {"start_us", grant.start_us},
                 {"end_us", grant.end_us},
                 {"tranches", tranches}});
    AddObligations(grant, now_us);
    grants_[grant.id] = std::move(grant);
  }
  return OkStatus();
}

void ProgramState::AddObligations(const Grant& grant, int64_t now_us) {
  const ObligationRules& rules = definition_.obligations;
  std::vector<Obligation> obligations;
  for (size_t idx = 0; idx < rules.progress_report_months.size(); ++idx) {
    obligations.push_back(
        {.id = grant.id + "/progress-" + std::to_string(idx + 1),
         .grant = grant.id,
         .kind = ObligationKind::kProgressReport,
         .sequence = static_cast<int64_t>(idx) + 1,
         .due_us = grant.start_us + rules.progress_report_months[idx] * kMicrosPerMonth});
  }
  const int64_t final_due_us = grant.end_us + rules.final_grace_months * kMicrosPerMonth;
  if (rules.final_report) {
    obligations.push_back({.id = grant.id + "/final-report",
                           .grant = grant.id,
                           .kind = ObligationKind::kFinalReport,
                           .due_us = final_due_us});
  }
  if (rules.paper) {
    obligations.push_back({.id = grant.id + "/paper",
                           .grant = grant.id,
                           .kind = ObligationKind::kPaper,
                           .due_us = final_due_us});
  }
  if (rules.repository) {
    obligations.push_back({.id = grant.id + "/repository",
                           .grant = grant.id,
                           .kind = ObligationKind::kRepository,
                           .due_us = final_due_us});
  }
  for (Obligation& obligation : obligations) {
    LogObligation(obligation, now_us);
    obligations_[obligation.id] = std::move(obligation);
  }
}

// ---------------------------------------------------------------------------------------
// Grants.

Status ProgramState::AddGrantMember(const std::string& grant_id, const std::string& person,
                                    int64_t /*now_us*/) {
  const auto grant = grants_.find(grant_id);
  if (grant == grants_.end()) return MakeError(ErrorCode::kNotFound, "unknown grant", "grant");
  if (people_.count(person) == 0)
    return MakeError(ErrorCode::kNotFound, "unknown person", "person");
  if (Contains(grant->second.members, person)) {
    return MakeError(ErrorCode::kAlreadyExists, "already a member", "person");
  }
  grant->second.members.push_back(person);
  return OkStatus();
}

Status ProgramState::RecordUsage(const std::string& grant_id, Credits amount, int64_t now_us) {
  const auto found = grants_.find(grant_id);
  if (found == grants_.end()) return MakeError(ErrorCode::kNotFound, "unknown grant", "grant");
  Grant& grant = found->second;
  if (grant.status != GrantStatus::kActive) {
    return MakeError(ErrorCode::kGrantNotActive,
                     "the grant is " + std::string(ToString(grant.status)), "grant");
  }
  if (amount <= Credits::Zero()) {
    return MakeError(ErrorCode::kInvalidArgument, "usage must be positive", "amount");
  }
  ATRIUM_TRY(TransferOrError({{.id = NextTransferId(),
                               .debit_account_id = grant.account,
                               .credit_account_id = kClusterRevenueAccount,
                               .amount = amount,
                               .code = kCodeUsage}},
                             now_us));
  grant.spent = Credits::FromMicro(grant.spent.micro() + amount.micro());
  return OkStatus();
}

Status ProgramState::NoteJobCharge(const std::string& grant_id, Credits amount) {
  const auto found = grants_.find(grant_id);
  if (found == grants_.end()) return MakeError(ErrorCode::kNotFound, "unknown grant", "grant");
  auto spent = found->second.spent.CheckedAdd(amount);
  if (!spent.ok() || amount.is_negative()) {
    return MakeError(ErrorCode::kInvalidArgument, "a job's charge is a non-negative amount");
  }
  found->second.spent = *spent;
  return OkStatus();
}

Status ProgramState::AllocateToStudent(const std::string& grant_id, const std::string& student,
                                       Credits amount, int64_t now_us) {
  const auto found = grants_.find(grant_id);
  if (found == grants_.end()) return MakeError(ErrorCode::kNotFound, "unknown grant", "grant");
  Grant& grant = found->second;
  if (FindTrack(grant.track)->kind != TrackKind::kEducation) {
    return MakeError(ErrorCode::kInvalidState, "only course grants have students", "grant");
  }
  if (grant.status != GrantStatus::kActive) {
    return MakeError(ErrorCode::kGrantNotActive, "the grant is not active", "grant");
  }
  if (people_.count(student) == 0)
    return MakeError(ErrorCode::kNotFound, "unknown student", "student");
  if (amount <= Credits::Zero()) {
    return MakeError(ErrorCode::kInvalidArgument, "allocation must be positive", "amount");
  }
  // Checked before the first change: a refused allocation must change nothing (no student
  // account, no membership), or replaying the journal would not rebuild the same state.
  if (amount > AccountAvailable(grant.account)) {
    return MakeError(ErrorCode::kInsufficientCredits, "the course has less left than that",
                     "amount");
  }
  uint64_t account = 0;
  const auto existing = grant.students.find(student);
  if (existing != grant.students.end()) {
    account = existing->second;
  } else {
    account = next_account_;
    ATRIUM_TRY(CreateAccountsOrError({{.id = account,
                                       .kind = AccountKind::kGrant,
                                       .flags = ledger::kDebitsMustNotExceedCredits,
                                       .user_data = grant.account}},
                                     now_us));
  }
  const Status moved = TransferOrError({{.id = next_transfer_,
                                         .debit_account_id = grant.account,
                                         .credit_account_id = account,
                                         .amount = amount,
                                         .code = kCodeStudent}},
                                       now_us);
  if (existing == grant.students.end()) {
    ++next_account_;  // the account exists in the ledger even if the transfer failed
    grant.students[student] = account;
  }
  ATRIUM_TRY(moved);
  ++next_transfer_;
  if (!Contains(grant.members, student)) grant.members.push_back(student);
  return OkStatus();
}

Status ProgramState::ReturnUnspent(Grant& grant, GrantStatus final_status, int64_t now_us) {
  if (grant.status == GrantStatus::kFrozen) ATRIUM_TRY(SetFrozen(grant, false, now_us));
  EndStorage(grant, now_us);
  std::vector<TransferSpec> transfers;
  for (const Tranche& tranche : grant.tranches) {
    if (tranche.released) continue;
    transfers.push_back({.id = NextTransferId(),
                         .pending_id = tranche.hold_transfer,
                         .code = kCodeAward,
                         .flags = ledger::kVoidPending | ledger::kLinked});
  }
  std::vector<uint64_t> sweeps;
  for (const auto& [student, account] : grant.students) {
    sweeps.push_back(NextTransferId());
    transfers.push_back({.id = sweeps.back(),
                         .debit_account_id = account,
                         .credit_account_id = kProgramPoolAccount,
                         .amount = Credits::Max(),
                         .code = kCodeReturn,
                         .flags = ledger::kBalancingDebit | ledger::kLinked});
  }
  sweeps.push_back(NextTransferId());
  transfers.push_back({.id = sweeps.back(),
                       .debit_account_id = grant.account,
                       .credit_account_id = kProgramPoolAccount,
                       .amount = Credits::Max(),
                       .code = kCodeReturn,
                       .flags = ledger::kBalancingDebit});
  ATRIUM_TRY(TransferOrError(std::move(transfers), now_us));
  int64_t returned = 0;
  for (uint64_t id : sweeps) returned += ledger_->FindTransfer(TransferId(id))->amount.micro();
  grant.returned = Credits::FromMicro(returned);
  grant.status = final_status;
  log_.Append(
      now_us, final_status == GrantStatus::kExpired ? "grant_expired" : "grant_closed",
      {{"grant", grant.id}, {"spent", Money(grant.spent)}, {"returned", Money(grant.returned)}});
  return OkStatus();
}

Status ProgramState::CloseGrant(const std::string& grant_id, int64_t now_us) {
  const auto found = grants_.find(grant_id);
  if (found == grants_.end()) return MakeError(ErrorCode::kNotFound, "unknown grant", "grant");
  if (found->second.status == GrantStatus::kExpired ||
      found->second.status == GrantStatus::kClosed) {
    return MakeError(ErrorCode::kGrantNotActive, "the grant is already over", "grant");
  }
  if (!GrantHeld(found->second).is_zero()) {
    return MakeError(ErrorCode::kInvalidState,
                     "jobs hold credits on the grant: stop them before closing it", "grant");
  }
  return ReturnUnspent(found->second, GrantStatus::kClosed, now_us);
}

Status ProgramState::SetFrozen(Grant& grant, bool frozen, int64_t now_us) {
  std::vector<ledger::AccountUpdate> updates = {
      {.id = AccountId(grant.account),
       .set_flags = static_cast<uint16_t>(frozen ? ledger::kFrozen : 0),
       .clear_flags = static_cast<uint16_t>(frozen ? 0 : ledger::kFrozen)}};
  for (const auto& [student, account] : grant.students) {
    updates.push_back({.id = AccountId(account),
                       .set_flags = updates.front().set_flags,
                       .clear_flags = updates.front().clear_flags});
  }
  const auto failures = ledger_->UpdateAccounts(updates, now_us);
  if (!failures.empty()) return MakeError(failures.front().code, "the ledger refused the freeze");
  grant.status = frozen ? GrantStatus::kFrozen : GrantStatus::kActive;
  return OkStatus();
}

void ProgramState::ReleaseTranches(Grant& grant, const std::string& condition, int64_t now_us) {
  for (size_t idx = 0; idx < grant.tranches.size(); ++idx) {
    Tranche& tranche = grant.tranches[idx];
    if (tranche.released || tranche.condition != condition) continue;
    const Status posted = TransferOrError({{.id = NextTransferId(),
                                            .amount = Credits::Max(),
                                            .pending_id = tranche.hold_transfer,
                                            .code = kCodeAward,
                                            .flags = ledger::kPostPending}},
                                          now_us);
    ATRIUM_CHECK(posted.ok(), "posting a tranche hold of an active grant cannot fail");
    tranche.released = true;
    log_.Append(now_us, "tranche_released",
                {{"grant", grant.id},
                 {"tranche", static_cast<int64_t>(idx) + 1},
                 {"amount", Money(tranche.amount)},
                 {"condition", condition}});
  }
}

// ---------------------------------------------------------------------------------------
// Obligations and time.

void ProgramState::LogObligation(const Obligation& obligation, int64_t now_us) {
  json data = {{"obligation", obligation.id},
               {"grant", obligation.grant},
               {"kind", ToString(obligation.kind)},
               {"state", ToString(obligation.state)},
               {"due_us", obligation.due_us}};
  if (!obligation.reference.empty()) data["reference"] = obligation.reference;
  if (!obligation.license.empty()) data["license"] = obligation.license;
  log_.Append(now_us, "obligation_changed", data);
}

bool ProgramState::HasOverdue(const std::string& grant_id) const {
  for (auto it = obligations_.lower_bound(grant_id + "/"); it != obligations_.end(); ++it) {
    if (it->second.grant != grant_id) break;
    if (it->second.state == ObligationState::kOverdue) return true;
  }
  return false;
}

Status ProgramState::SubmitObligation(const std::string& obligation_id, std::string reference,
                                      std::string license, int64_t now_us) {
  const auto found = obligations_.find(obligation_id);
  if (found == obligations_.end()) {
    return MakeError(ErrorCode::kNotFound, "unknown obligation", "obligation");
  }
  Obligation& obligation = found->second;
  if (obligation.state == ObligationState::kAccepted ||
      obligation.state == ObligationState::kSubmitted) {
    return MakeError(ErrorCode::kInvalidState,
                     "the obligation is already " + std::string(ToString(obligation.state)),
                     "obligation");
  }
  ATRIUM_TRY(CheckText(reference, "reference"));
  switch (obligation.kind) {
    case ObligationKind::kPaper:
      ATRIUM_TRY(ValidatePaperId(reference));
      break;
    case ObligationKind::kRepository:
      ATRIUM_TRY(ValidateRepository(reference, license));
      break;
    case ObligationKind::kProgressReport:
    case ObligationKind::kFinalReport:
      if (reference.empty()) {
        return MakeError(ErrorCode::kInvalidArgument, "a report needs a reference", "reference");
      }
      break;
  }
  if (obligation.state == ObligationState::kOverdue) obligation.was_overdue = true;
  obligation.state = ObligationState::kSubmitted;
  obligation.reference = std::move(reference);
  obligation.license = obligation.kind == ObligationKind::kRepository ? std::move(license) : "";
  LogObligation(obligation, now_us);
  return OkStatus();
}

Status ProgramState::ReviewObligation(const std::string& obligation_id, bool accept,
                                      int64_t now_us) {
  const auto found = obligations_.find(obligation_id);
  if (found == obligations_.end()) {
    return MakeError(ErrorCode::kNotFound, "unknown obligation", "obligation");
  }
  Obligation& obligation = found->second;
  if (obligation.state != ObligationState::kSubmitted) {
    return MakeError(ErrorCode::kInvalidState, "only a submitted obligation can be reviewed",
                     "obligation");
  }
  Grant& grant = grants_.at(obligation.grant);
  if (!accept) {
    obligation.state =
        now_us >= obligation.due_us ? ObligationState::kOverdue : ObligationState::kDue;
    LogObligation(obligation, now_us);
    if (obligation.state == ObligationState::kOverdue &&
        definition_.obligations.freeze_when_overdue && grant.status == GrantStatus::kActive) {
      ATRIUM_CHECK(SetFrozen(grant, true, now_us).ok(), "freezing an active grant");
      log_.Append(now_us, "sanction_applied", {{"grant", grant.id}, {"obligation", obligation.id}});
    }
    return OkStatus();
  }
  obligation.state = ObligationState::kAccepted;
  LogObligation(obligation, now_us);
  if (grant.status == GrantStatus::kFrozen && !HasOverdue(grant.id)) {
    ATRIUM_CHECK(SetFrozen(grant, false, now_us).ok(), "thawing a frozen grant");
    log_.Append(now_us, "sanction_lifted", {{"grant", grant.id}, {"obligation", obligation.id}});
  }
  if (obligation.kind == ObligationKind::kProgressReport &&
      (grant.status == GrantStatus::kActive || grant.status == GrantStatus::kFrozen)) {
    ReleaseTranches(grant, "progress_report:" + std::to_string(obligation.sequence), now_us);
  }
  return OkStatus();
}

int64_t ProgramState::Tick(int64_t now_us) {
  int64_t events = SettleStorage(now_us);
  for (auto& [id, obligation] : obligations_) {
    if (obligation.state != ObligationState::kDue || obligation.due_us > now_us) continue;
    Grant& grant = grants_.at(obligation.grant);
    if (grant.status == GrantStatus::kClosed) continue;
    obligation.state = ObligationState::kOverdue;
    obligation.was_overdue = true;
    LogObligation(obligation, now_us);
    ++events;
    if (definition_.obligations.freeze_when_overdue && grant.status == GrantStatus::kActive) {
      ATRIUM_CHECK(SetFrozen(grant, true, now_us).ok(), "freezing an active grant");
      log_.Append(now_us, "sanction_applied", {{"grant", grant.id}, {"obligation", id}});
      ++events;
    }
  }
  for (auto& [id, grant] : grants_) {
    if ((grant.status == GrantStatus::kActive || grant.status == GrantStatus::kFrozen) &&
        grant.end_us <= now_us && GrantHeld(grant).is_zero()) {
      ATRIUM_CHECK(ReturnUnspent(grant, GrantStatus::kExpired, now_us).ok(),
                   "returning an expired grant's credits");
      ++events;
    }
  }
  events += TickTraining(now_us);
  return events;
}

void ProgramState::RebuildIndexes() {
  assigned_by_reviewer_.clear();
  for (const Assignment& assignment : assignments_) {
    assigned_by_reviewer_[assignment.reviewer].insert(assignment.proposal);
  }
}

std::vector<std::string> ProgramState::GrantsEndingBy(int64_t now_us) const {
  std::vector<std::string> ending;
  for (const auto& [id, grant] : grants_) {
    if ((grant.status == GrantStatus::kActive || grant.status == GrantStatus::kFrozen) &&
        grant.end_us <= now_us) {
      ending.push_back(id);
    }
  }
  return ending;
}

// ---------------------------------------------------------------------------------------
// Sealed entries of the public log (decision_log.h; docs/program.md, what is public when).

std::string ProgramState::SecretHex(const std::string& message) const {
  return HmacHex(seal_secret_, message);
}

std::string ProgramState::SealRef(const std::string& what) const {
  // Short and opaque: equal for the same proposal or review, unlinkable to it without
  // the secret.
  return HmacHex(seal_secret_, "ref\n" + what).substr(0, 24);
}

std::string ProgramState::SealSalt(const Seal& seal) const {
  return HmacHex(seal_secret_, "salt\n" + seal.ref + "\n" + std::to_string(seal.version));
}

json ProgramState::CommitSeal(Seal& seal, json content) const {
  ++seal.version;
  seal.content = std::move(content);
  return {{"call", seal.call},
          {"ref", seal.ref},
          {"commitment", SealCommitment(SealSalt(seal), seal.content)}};
}

void ProgramState::RevealSeals(const std::string& call_id, int64_t now_us) {
  const auto reveal = [&](const char* type, const Seal& seal) {
    log_.Append(now_us, type,
                {{"call", call_id},
                 {"ref", seal.ref},
                 {"committed_in", seal.committed_in},
                 {"salt", SealSalt(seal)},
                 {"content", seal.content}});
  };
  for (const auto& [id, seal] : proposal_seals_) {
    if (seal.call == call_id) reveal("proposal_revealed", seal);
  }
  for (const auto& [key, seal] : review_seals_) {
    if (seal.call == call_id) reveal("review_revealed", seal);
  }
}

}  // namespace atrium::program
