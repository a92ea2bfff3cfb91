// Shared helpers for the conformance scenarios: the parametrized fixture and small checks that
// turn into a failed child status.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/conformance/harness.h"

namespace braid::conformance {

#define EXPECT_OR_RETURN(cond, ...)                                                       \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      return absl::InternalError(absl::StrCat(__FILE__, ":", __LINE__, ": ", #cond, " ", \
                                              ##__VA_ARGS__));                            \
    }                                                                                     \
  } while (0)

inline void ExpectAllOk(const std::vector<ChildOutcome>& outcomes) {
  for (const auto& o : outcomes) EXPECT_TRUE(o.ok) << o.message;
}

// Parametrized by transport name; every usable registered transport runs every scenario.
class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  const std::string& transport() const { return GetParam(); }
};

// Whether an error's text contains `text`.
inline bool Mentions(const absl::Status& status, const std::string& text) {
  return std::string(status.message()).find(text) != std::string::npos;
}

// Posts a receive and a send of `size` bytes with `tag` to every other rank, waits, verifies.
absl::Status ExchangeWithAll(ChildEnv& env, size_t size, uint64_t tag, Deadline deadline);

}  // namespace braid::conformance
