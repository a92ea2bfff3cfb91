#include "tools/health/host_report.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace braid::health {
namespace {

constexpr uint32_t kMagic = 0x42484c31;  // "BHL1"
constexpr uint32_t kMaxString = 4096;
constexpr uint32_t kMaxItems = 4096;

class Writer {
 public:
  void U32(uint32_t v) { Raw(&v, sizeof(v)); }
  void F64(double v) { Raw(&v, sizeof(v)); }
  void Str(const std::string& s) {
    std::string cut = s.substr(0, kMaxString);
    U32(static_cast<uint32_t>(cut.size()));
    Raw(cut.data(), cut.size());
  }
  std::vector<std::byte> bytes;

 private:
  void Raw(const void* p, size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
};

class Reader {
 public:
  explicit Reader(const std::vector<std::byte>& bytes) : bytes_(bytes) {}
  bool U32(uint32_t* v) { return Raw(v, sizeof(*v)); }
  bool F64(double* v) { return Raw(v, sizeof(*v)); }
  bool Str(std::string* s) {
    uint32_t n = 0;
    if (!U32(&n) || n > kMaxString || n > bytes_.size() - pos_) return false;
    s->assign(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  bool Raw(void* p, size_t n) {
    if (n > bytes_.size() - pos_) return false;
    std::memcpy(p, bytes_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  const std::vector<std::byte>& bytes_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<std::byte> EncodeHostReport(const HostReport& report) {
  Writer w;
  w.U32(kMagic);
  w.U32(static_cast<uint32_t>(report.checks.size()));
  for (const LocalCheck& c : report.checks) {
    w.Str(c.name);
    w.Str(c.value);
    w.U32(c.ok ? 1 : 0);
    w.Str(c.remedy);
  }
  w.U32(static_cast<uint32_t>(report.pairs.size()));
  for (const PairRecord& p : report.pairs) {
    w.U32(static_cast<uint32_t>(p.a));
    w.U32(static_cast<uint32_t>(p.b));
    w.U32((p.measured ? 1u : 0u) | (p.ok ? 2u : 0u));
    w.F64(p.gbps_ab);
    w.F64(p.gbps_ba);
    w.F64(p.latency_us);
    w.Str(p.error);
  }
  return std::move(w.bytes);
}

absl::StatusOr<HostReport> DecodeHostReport(const std::vector<std::byte>& bytes, int hosts) {
  auto malformed = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("malformed host report (", bytes.size(),
                                            " bytes): ", what));
  };
  Reader r(bytes);
  uint32_t magic = 0, count = 0;
  if (!r.U32(&magic) || magic != kMagic) return malformed("bad magic or version");
  HostReport report;
  if (!r.U32(&count) || count > kMaxItems) return malformed("check count");
  for (uint32_t i = 0; i < count; ++i) {
    LocalCheck c;
    uint32_t ok = 0;
    if (!r.Str(&c.name) || !r.Str(&c.value) || !r.U32(&ok) || ok > 1 || !r.Str(&c.remedy)) {
      return malformed("check");
    }
    c.ok = ok == 1;
    report.checks.push_back(std::move(c));
  }
  if (!r.U32(&count) || count > kMaxItems) return malformed("pair count");
  for (uint32_t i = 0; i < count; ++i) {
    PairRecord p;
    uint32_t a = 0, b = 0, flags = 0;
    if (!r.U32(&a) || !r.U32(&b) || !r.U32(&flags) || !r.F64(&p.gbps_ab) || !r.F64(&p.gbps_ba) ||
        !r.F64(&p.latency_us) || !r.Str(&p.error)) {
      return malformed("pair");
    }
    if (a >= b || b >= static_cast<uint32_t>(hosts) || flags > 3) return malformed("pair hosts");
    p.a = static_cast<int>(a);
    p.b = static_cast<int>(b);
    p.measured = flags & 1;
    p.ok = flags & 2;
    report.pairs.push_back(std::move(p));
  }
  if (!r.done()) return malformed("trailing bytes");
  return report;
}

}  // namespace braid::health
