// Training programs and educational resources of a grant program (docs/training.md): a
// catalog of courses and self-paced labs, enrolments of the program's grant members and
// course students, the lab credits each enrolment carries, completions and their
// certificates. Plain value types; ProgramState (training.cc) owns them and enforces the
// rules.
//
// Credits of a lab come from a training budget: a track's pool. Enrolling moves the lab's
// credits from that pool to an account of the enrolment (code kCodeTraining); the lab's
// jobs hold and charge that account, so admission enforces the per-student allocation as
// it does a course student's; when the enrolment ends (completed or withdrawn) and no job
// holds credits on it, what is left goes back to the pool (code kCodeTraining again).
//
// A completion issues a certificate: a `certificate_issued` entry of the public log that
// names the certificate, the item and an opaque holder id (an HMAC of the person under the
// program's seal secret), never the person. Anyone with the certificate id finds the
// entry and checks it in the hash-chained log; the holder proves it is theirs by asking
// the program (which recomputes the holder id).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/credits.h"

namespace atrium::program {

enum class TrainingKind : uint8_t { kCourse, kLab };
std::string_view ToString(TrainingKind kind);

enum class TrainingLevel : uint8_t { kIntroductory, kIntermediate, kAdvanced };
std::string_view ToString(TrainingLevel level);

// What a lab's job runs by default: a learner may ask for less, never for more.
struct LabTemplate {
  std::string accelerator;  // empty: the cluster's default type
  int64_t chips = 0;
  int64_t walltime_s = 0;
  std::vector<std::string> argv;  // the command (an image's entry point, a script)
  std::string image;              // informational: the container image the lab expects
};

struct TrainingItem {
  std::string id;
  TrainingKind kind = TrainingKind::kCourse;
  std::string title;
  TrainingLevel level = TrainingLevel::kIntroductory;
  std::vector<std::string> prerequisites;  // items the learner must have completed
  std::vector<std::string> materials;      // links
  std::vector<std::string> instructors;    // person ids: see enrolments, mark completions
  std::string track;                       // the training budget of a lab's credits
  Credits credits;                         // a lab's credits per enrolment (zero: none)
  LabTemplate lab;                         // labs only
  int64_t added_us = 0;
};

enum class EnrolmentState : uint8_t { kEnrolled, kCompleted, kWithdrawn };
std::string_view ToString(EnrolmentState state);

struct Enrolment {
  std::string id;  // "E-<n>"
  std::string item;
  std::string person;
  std::string grant;  // the grant (member, PI or course student) that made them eligible
  EnrolmentState state = EnrolmentState::kEnrolled;
  uint64_t account = 0;  // the lab credits' account (0 without credits)
  Credits credits;       // moved in from the track's pool at enrolment
  Credits spent;         // charged by the lab's jobs
  Credits returned;      // moved back to the pool after the enrolment ended
  int64_t enrolled_us = 0;
  int64_t ended_us = 0;
  std::string completed_by;     // "job:J7" or "instructor:<person>" or "staff:<person>"
  std::string certificate;      // "C-<hex>", once completed
  int64_t certificate_seq = 0;  // its certificate_issued entry in the public log
};

struct TrainingBook {
  std::map<std::string, TrainingItem> items;
  std::map<std::string, Enrolment> enrolments;
  // (person, item) -> the person's latest enrolment in the item.
  std::map<std::pair<std::string, std::string>, std::string> by_learner;
  std::map<std::string, std::string> by_certificate;  // certificate -> enrolment
  // Ended enrolments whose account still has credits a job held at the end: returned by
  // a later tick once the hold has settled.
  std::set<std::string> returns_due;
  uint64_t next_enrolment = 1;
};

// Bounds of the catalog (every loop over it stays finite).
inline constexpr size_t kTrainingItemsMax = 10'000;
inline constexpr size_t kEnrolmentsMax = 1'000'000;

}  // namespace atrium::program
