// Launcher environment detection. Rank and world size come from the first launcher whose
// variables are present (BRAID_* > torchrun > Open MPI > Slurm); the root address from
// BRAID_ROOT, else MASTER_ADDR/MASTER_PORT.
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bootstrap/bootstrap.h"
#include "core/status.h"

namespace braid {
namespace {

using Getenv = std::function<const char*(const char*)>;

constexpr absl::string_view kWhat = "detect the launcher environment";

absl::Status Bad(absl::string_view detail, absl::string_view remedy = {}) {
  return MakeError(absl::StatusCode::kInvalidArgument, kWhat, detail, remedy);
}

// The variable's value, or nullptr when unset or empty.
const char* Get(const Getenv& getenv_fn, const char* name) {
  const char* value = getenv_fn(name);
  return (value != nullptr && *value != '\0') ? value : nullptr;
}

absl::StatusOr<int> ParseInt(const char* name, const char* text, int min_value) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min_value) {
    return Bad(absl::StrCat(name, "=\"", text, "\" is not an integer >= ", min_value));
  }
  return value;
}

absl::StatusOr<uint16_t> ParsePort(const char* name, const char* text) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 1 || value > 65535) {
    return Bad(absl::StrCat(name, "=\"", text, "\" is not a port number in 1..65535"));
  }
  return static_cast<uint16_t>(value);
}

// "host:port" or "[v6]:port".
absl::Status ParseRoot(const char* text, LaunchEnvironment* env) {
  absl::string_view value(text);
  absl::string_view host, port;
  const absl::string_view form = "use BRAID_ROOT=host:port, or BRAID_ROOT=[v6addr]:port for IPv6";
  if (value.front() == '[') {
    size_t close = value.find(']');
    if (close == absl::string_view::npos || close + 1 >= value.size() || value[close + 1] != ':') {
      return Bad(absl::StrCat("BRAID_ROOT=\"", value,
                              "\" has an unterminated [IPv6] address "
                              "or no :port after it"),
                 form);
    }
    host = value.substr(1, close - 1);
    port = value.substr(close + 2);
  } else {
    size_t colon = value.rfind(':');
    if (colon == absl::string_view::npos) {
      return Bad(absl::StrCat("BRAID_ROOT=\"", value, "\" has no :port"), form);
    }
    host = value.substr(0, colon);
    port = value.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return Bad(absl::StrCat("BRAID_ROOT=\"", value, "\" looks like a bare IPv6 address"), form);
    }
  }
  if (host.empty()) return Bad(absl::StrCat("BRAID_ROOT=\"", value, "\" has no host"), form);
  std::string port_text(port);
  BRAID_ASSIGN_OR_RETURN(env->root_port, ParsePort("BRAID_ROOT's port", port_text.c_str()));
  env->root_host = std::string(host);
  return absl::OkStatus();
}

// Fills the root from BRAID_ROOT or MASTER_ADDR/MASTER_PORT. Returns false if neither is set.
absl::StatusOr<bool> DetectRoot(const Getenv& getenv_fn, LaunchEnvironment* env) {
  if (const char* root = Get(getenv_fn, "BRAID_ROOT")) {
    BRAID_RETURN_IF_ERROR(ParseRoot(root, env));
    return true;
  }
  const char* addr = Get(getenv_fn, "MASTER_ADDR");
  const char* port = Get(getenv_fn, "MASTER_PORT");
  if (addr == nullptr && port == nullptr) return false;
  if (addr == nullptr) return Bad("MASTER_PORT is set but MASTER_ADDR is not", "set both");
  if (port == nullptr) return Bad("MASTER_ADDR is set but MASTER_PORT is not", "set both");
  BRAID_ASSIGN_OR_RETURN(env->root_port, ParsePort("MASTER_PORT", port));
  std::string host(addr);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  env->root_host = host;
  return true;
}

struct Launcher {
  absl::string_view source;
  const char* rank_var;
  const char* size_var;
  absl::string_view missing_root_remedy;  // empty: the launcher always sets the root.
};

constexpr absl::string_view kSetRoot =
    "export BRAID_ROOT=host:port (or MASTER_ADDR and MASTER_PORT) naming rank 0's host and a "
    "free port, on every rank";

const Launcher kLaunchers[] = {
    {"braid", "BRAID_RANK", "BRAID_WORLD_SIZE", {}},
    {"torchrun", "RANK", "WORLD_SIZE", {}},
    {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
     "under mpirun, also export BRAID_ROOT=host:port (or MASTER_ADDR and MASTER_PORT) naming the "
     "node of rank 0 and a free port, e.g. mpirun -x BRAID_ROOT=node1:29500 ...; Braid's MPI "
     "bootstrap (no root needed) is a later feature"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS",
     "under srun, also export BRAID_ROOT=host:port (or MASTER_ADDR and MASTER_PORT) naming the "
     "node of rank 0 and a free port, e.g. BRAID_ROOT=$(scontrol show hostnames "
     "\"$SLURM_JOB_NODELIST\" | head -n1):29500"},
};

}  // namespace

absl::StatusOr<LaunchEnvironment> DetectLaunchEnvironment(const Getenv& getenv_fn) {
  for (const Launcher& launcher : kLaunchers) {
    const char* rank_text = Get(getenv_fn, launcher.rank_var);
    const char* size_text = Get(getenv_fn, launcher.size_var);
    if (rank_text == nullptr && size_text == nullptr) continue;
    if (rank_text == nullptr || size_text == nullptr) {
      const char* missing = rank_text == nullptr ? launcher.rank_var : launcher.size_var;
      const char* present = rank_text == nullptr ? launcher.size_var : launcher.rank_var;
      return Bad(
          absl::StrCat(present, " is set but ", missing, " is not (", launcher.source, " launch)"),
          absl::StrCat("set both ", launcher.rank_var, " and ", launcher.size_var));
    }
    LaunchEnvironment env;
    env.source = std::string(launcher.source);
    BRAID_ASSIGN_OR_RETURN(env.world_size, ParseInt(launcher.size_var, size_text, 1));
    BRAID_ASSIGN_OR_RETURN(env.rank, ParseInt(launcher.rank_var, rank_text, 0));
    if (env.rank >= env.world_size) {
      return Bad(absl::StrCat(launcher.rank_var, "=", env.rank, " is not below ", launcher.size_var,
                              "=", env.world_size));
    }
    BRAID_ASSIGN_OR_RETURN(bool have_root, DetectRoot(getenv_fn, &env));
    if (!have_root) {
      absl::string_view remedy =
          launcher.missing_root_remedy.empty() ? kSetRoot : launcher.missing_root_remedy;
      return MakeError(absl::StatusCode::kFailedPrecondition, kWhat,
                       absl::StrCat(launcher.source, " launch found (", launcher.rank_var, "=",
                                    rank_text, ", ", launcher.size_var, "=", size_text,
                                    ") but no rendezvous root: neither BRAID_ROOT nor "
                                    "MASTER_ADDR/MASTER_PORT is set"),
                       remedy);
    }
    return env;
  }
  return MakeError(absl::StatusCode::kFailedPrecondition, kWhat,
                   "no launcher variables found (none of BRAID_RANK/BRAID_WORLD_SIZE, "
                   "RANK/WORLD_SIZE, OMPI_COMM_WORLD_RANK/SIZE, SLURM_PROCID/SLURM_NTASKS)",
                   "start the ranks with braidrun (it sets them), with torchrun, or set "
                   "BRAID_RANK, BRAID_WORLD_SIZE and BRAID_ROOT=host:port yourself; under "
                   "mpirun or srun also set BRAID_ROOT");
}

absl::StatusOr<LaunchEnvironment> DetectLaunchEnvironment() {
  return DetectLaunchEnvironment([](const char* name) { return std::getenv(name); });
}

}  // namespace braid
