#include "drivers/qemu_layout.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "base/checked.h"

namespace vmemfs::drivers {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxRanges = 4096;
constexpr size_t kMaxCpus = 4096;

// Strict hex: 1 to 16 digits, nothing else.
std::optional<uint64_t> Hex(std::string_view s) {
  if (s.empty() || s.size() > 16) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Calls f(line) for each line of `text` until f returns false.
template <typename F>
void ForEachLine(std::string_view text, F f) {
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (!f(line)) return;
  }
}

std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> words;
  while (true) {
    s = Trim(s);
    if (s.empty()) return words;
    const size_t sp = s.find(' ');
    words.push_back(s.substr(0, sp));
    if (sp == std::string_view::npos) return words;
    s.remove_prefix(sp);
  }
}

// "  0000000000100000-000000000fffffff (prio 0, ram): ram @0000000000100000 KVM".
// nullopt for a range that is not RAM-backed; kBadData for a malformed line.
Result<std::optional<MtreeRange>> ParseMtreeLine(std::string_view line) {
  const Status bad =
      BadDataError("info mtree: malformed line '" + std::string(line.substr(0, 120)) + "'");
  line = Trim(line);
  const size_t dash = line.find('-');
  const size_t open = line.find(" (prio ");
  const size_t close = line.find("): ");
  if (dash == std::string_view::npos || open == std::string_view::npos ||
      close == std::string_view::npos || !(dash < open && open < close)) {
    return bad;
  }
  const auto first = Hex(line.substr(0, dash));
  const auto last = Hex(line.substr(dash + 1, open - dash - 1));
  if (!first || !last || *last < *first || !CheckedAdd(*last, 1)) return bad;
  std::string_view type = line.substr(open + 7, close - open - 7);
  const size_t comma = type.find(", ");
  if (comma == std::string_view::npos) return bad;
  type = type.substr(comma + 2);
  if (type.starts_with("nv-")) type.remove_prefix(3);
  if (type != "ram" && type != "rom") return std::optional<MtreeRange>();
  std::string_view name = line.substr(close + 3);
  if (name.ends_with(" KVM")) name.remove_suffix(4);
  uint64_t offset = 0;
  if (const size_t at = name.rfind(" @"); at != std::string_view::npos) {
    const auto off = Hex(name.substr(at + 2));
    if (!off) return bad;
    offset = *off;
    name = name.substr(0, at);
  }
  if (name.empty() || name.size() > 256) return bad;
  return std::optional<MtreeRange>(
      MtreeRange{*first, *last + 1, std::string(name), offset, type == "rom"});
}

Status CheckOrder(const std::vector<MtreeRange>& ranges) {
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].start < ranges[i - 1].end) {
      return BadDataError("info mtree: overlapping ranges at 0x" + std::to_string(ranges[i].start));
    }
  }
  return Status();
}

Result<uint64_t> HvaOf(QemuMonitor& monitor, uint64_t gpa) {
  char command[64];
  snprintf(command, sizeof command, "gpa2hva 0x%llx", static_cast<unsigned long long>(gpa));
  VMEMFS_ASSIGN_OR_RETURN(std::string out, monitor.Hmp(command));
  return ParseGpa2Hva(out, gpa);
}

// Looks the range up in QEMU's process and checks it is contiguous there.
Result<HostRange> LocateRange(QemuMonitor& monitor, const MtreeRange& r) {
  VMEMFS_ASSIGN_OR_RETURN(uint64_t hva, HvaOf(monitor, r.start));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t last_hva, HvaOf(monitor, r.end - 1));
  const auto expected = CheckedAdd(hva, r.end - 1 - r.start);
  if (!expected || *expected != last_hva) {
    return BadDataError("QEMU holds guest RAM '" + r.region + "' discontiguously");
  }
  return HostRange{r.start, r.end, r.region, hva, r.readonly};
}

bool Continues(const HostRange& a, const HostRange& b) {
  return a.end == b.start && a.region == b.region && a.readonly == b.readonly &&
         a.hva + (a.end - a.start) == b.hva;
}

// Register names of `info registers` (64- and 32-bit forms) that map 1:1.
std::optional<Register> PlainRegister(std::string_view name) {
  static constexpr std::pair<std::string_view, Register> kNames[] = {
      {"RAX", Register::kRax},    {"RBX", Register::kRbx}, {"RCX", Register::kRcx},
      {"RDX", Register::kRdx},    {"RSI", Register::kRsi}, {"RDI", Register::kRdi},
      {"RBP", Register::kRbp},    {"RSP", Register::kRsp}, {"EAX", Register::kRax},
      {"EBX", Register::kRbx},    {"ECX", Register::kRcx}, {"EDX", Register::kRdx},
      {"ESI", Register::kRsi},    {"EDI", Register::kRdi}, {"EBP", Register::kRbp},
      {"ESP", Register::kRsp},    {"R8", Register::kR8},   {"R9", Register::kR9},
      {"R10", Register::kR10},    {"R11", Register::kR11}, {"R12", Register::kR12},
      {"R13", Register::kR13},    {"R14", Register::kR14}, {"R15", Register::kR15},
      {"RIP", Register::kRip},    {"EIP", Register::kRip}, {"RFL", Register::kRflags},
      {"EFL", Register::kRflags}, {"CR0", Register::kCr0}, {"CR2", Register::kCr2},
      {"CR3", Register::kCr3},    {"CR4", Register::kCr4}, {"EFER", Register::kEfer},
  };
  for (const auto& [n, r] : kNames) {
    if (n == name) return r;
  }
  return std::nullopt;
}

struct Segment {
  std::string_view name;
  Register selector;
  std::optional<Register> base;
};
constexpr Segment kSegments[] = {
    {"ES", Register::kEs, std::nullopt},      {"CS", Register::kCs, std::nullopt},
    {"SS", Register::kSs, std::nullopt},      {"DS", Register::kDs, std::nullopt},
    {"FS", Register::kFs, Register::kFsBase}, {"GS", Register::kGs, Register::kGsBase},
};

// "CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]", "GDT=     base limit".
// Returns false if the line is not a segment or table line.
Result<bool> ParseSegmentLine(std::string_view name, std::string_view rest, RegisterSet& regs) {
  const std::vector<std::string_view> w = Words(rest);
  const Status bad = BadDataError("info registers: malformed " + std::string(name) + " line");
  if (name == "GDT" || name == "IDT") {
    if (w.size() < 2) return bad;
    const auto base = Hex(w[0]), limit = Hex(w[1]);
    if (!base || !limit) return bad;
    regs.Set(name == "GDT" ? Register::kGdtrBase : Register::kIdtrBase, *base);
    regs.Set(name == "GDT" ? Register::kGdtrLimit : Register::kIdtrLimit, *limit);
    return true;
  }
  for (const Segment& s : kSegments) {
    if (s.name != name) continue;
    if (w.size() < 2) return bad;
    const auto selector = Hex(w[0]), base = Hex(w[1]);
    if (!selector || !base) return bad;
    regs.Set(s.selector, *selector);
    if (s.base) regs.Set(*s.base, *base);
    return true;
  }
  return name == "LDT" || name == "TR";  // known, not part of RegisterSet
}

// "RAX=000000000001ad40 RBX=..." and "R8 =..." (QEMU pads names to three characters).
Status ParsePairs(std::string_view line, RegisterSet& regs) {
  std::string joined;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == ' ' && i + 1 < line.size() && line[i + 1] == '=') continue;
    joined += line[i];
  }
  for (std::string_view word : Words(joined)) {
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos) continue;
    const auto reg = PlainRegister(word.substr(0, eq));
    if (!reg) continue;
    const auto value = Hex(word.substr(eq + 1));
    if (!value) return BadDataError("info registers: bad value in '" + std::string(word) + "'");
    regs.Set(*reg, *value);
  }
  return Status();
}

// Parses `text` as JSON and runs `f` on it; type mismatches become kBadData.
template <typename T, typename F>
Result<T> WithJson(std::string_view text, std::string_view what, F f) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return BadDataError(std::string(what) + ": not JSON");
  try {
    return f(j);
  } catch (const json::exception& e) {
    return BadDataError(std::string(what) + ": unexpected JSON: " + e.what());
  }
}

}  // namespace

Result<std::vector<MtreeRange>> ParseMtreeMemory(std::string_view text) {
  std::vector<MtreeRange> ranges;
  Status status;
  bool in_view = false, found = false, in_ranges = false;
  ForEachLine(text, [&](std::string_view line) {
    if (line.starts_with("FlatView ")) {
      if (found) return false;  // the view we wanted is complete
      in_view = in_ranges = false;
      return true;
    }
    if (line.starts_with(" AS \"memory\",")) in_view = found = true;
    if (!in_view) return true;
    if (line.starts_with(" Root memory region")) return in_ranges = true;
    if (!in_ranges || Trim(line).empty()) return true;
    Result<std::optional<MtreeRange>> r = ParseMtreeLine(line);
    if (!r) {
      status = r.error();
      return false;
    }
    if (*r) ranges.push_back(**r);
    if (ranges.size() > kMaxRanges) status = BadDataError("info mtree: too many RAM ranges");
    return status.ok();
  });
  VMEMFS_TRY(status);
  if (!found) return BadDataError("info mtree: no FlatView of AS \"memory\"");
  VMEMFS_TRY(CheckOrder(ranges));
  return ranges;
}

Result<uint64_t> ParseGpa2Hva(std::string_view text, uint64_t gpa) {
  text = Trim(text.substr(0, text.find('\n')));
  if (text.starts_with("No memory is mapped") ||
      text.find("is not RAM") != std::string_view::npos) {
    return FaultError(gpa, "QEMU: guest-physical address is not RAM: " + std::string(text));
  }
  char prefix[64];
  snprintf(prefix, sizeof prefix, "Host virtual address for 0x%llx (",
           static_cast<unsigned long long>(gpa));
  const size_t is = text.rfind(") is 0x");
  if (!text.starts_with(prefix) || is == std::string_view::npos) {
    return BadDataError("gpa2hva: unexpected answer '" + std::string(text.substr(0, 120)) + "'");
  }
  const auto hva = Hex(text.substr(is + 7));
  if (!hva) return BadDataError("gpa2hva: bad address in '" + std::string(text) + "'");
  return *hva;
}

Result<std::vector<HostRange>> ReadHostRanges(QemuMonitor& monitor) {
  VMEMFS_ASSIGN_OR_RETURN(std::string mtree, monitor.Hmp("info mtree -f"));
  VMEMFS_ASSIGN_OR_RETURN(std::vector<MtreeRange> ranges, ParseMtreeMemory(mtree));
  std::vector<HostRange> out;
  for (const MtreeRange& r : ranges) {
    VMEMFS_ASSIGN_OR_RETURN(HostRange h, LocateRange(monitor, r));
    if (!out.empty() && Continues(out.back(), h)) {
      out.back().end = h.end;
    } else {
      out.push_back(std::move(h));
    }
  }
  if (out.empty()) return BadDataError("info mtree: the VM has no RAM");
  return out;
}

Result<RegisterSet> ParseInfoRegisters(std::string_view text) {
  RegisterSet regs;
  Status status;
  ForEachLine(text, [&](std::string_view line) {
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) return true;
    const std::string_view name = Trim(line.substr(0, eq));
    Result<bool> segment = ParseSegmentLine(name, line.substr(eq + 1), regs);
    if (!segment) {
      status = segment.error();
    } else if (!*segment) {
      status = ParsePairs(line, regs);
    }
    return status.ok();
  });
  VMEMFS_TRY(status);
  if (!regs.Has(Register::kRip) || !regs.Has(Register::kCr3)) {
    return BadDataError("info registers: no RIP/CR3 in the output");
  }
  return regs;
}

Result<std::vector<RegisterSet>> ParseInfoRegistersAll(std::string_view text) {
  std::vector<RegisterSet> cpus;
  size_t pos = text.find("CPU#");
  if (pos == std::string_view::npos) return BadDataError("info registers: no CPU# section");
  while (pos != std::string_view::npos) {
    const size_t next = text.find("\nCPU#", pos);
    std::string_view section = text.substr(
        pos + 4, next == std::string_view::npos ? std::string_view::npos : next - pos - 4);
    unsigned index = 0;
    auto [ptr, ec] = std::from_chars(section.data(), section.data() + section.size(), index);
    if (ec != std::errc() || index >= kMaxCpus) return BadDataError("info registers: bad CPU#");
    section.remove_prefix(static_cast<size_t>(ptr - section.data()));
    Result<RegisterSet> regs = ParseInfoRegisters(section);
    if (!regs) return regs.error().WithContext("CPU#" + std::to_string(index));
    if (cpus.size() <= index) cpus.resize(index + 1);
    cpus[index] = *regs;
    pos = next == std::string_view::npos ? next : next + 1;
  }
  return cpus;
}

Result<RegisterSet> ReadRegisters(QemuMonitor& monitor, unsigned vcpu) {
  // `info registers -a` instead of `cpu N` + `info registers`: `cpu N` would change the
  // monitor's current CPU, state another monitor user may rely on.
  VMEMFS_ASSIGN_OR_RETURN(std::string out, monitor.Hmp("info registers -a"));
  VMEMFS_ASSIGN_OR_RETURN(std::vector<RegisterSet> cpus, ParseInfoRegistersAll(out));
  if (vcpu >= cpus.size() || cpus[vcpu].empty()) {
    return NotFoundError("QEMU has no registers for vCPU " + std::to_string(vcpu));
  }
  return cpus[vcpu];
}

Result<RunState> ParseQueryStatus(std::string_view json_text) {
  return WithJson<RunState>(json_text, "query-status", [](const json& j) {
    return j.at("running").get<bool>() ? RunState::kRunning : RunState::kPaused;
  });
}

Result<std::vector<int64_t>> ParseCpuThreads(std::string_view json_text) {
  return WithJson<std::vector<int64_t>>(
      json_text, "query-cpus-fast", [](const json& j) -> Result<std::vector<int64_t>> {
        if (!j.is_array() || j.empty() || j.size() > kMaxCpus) {
          return BadDataError("query-cpus-fast: not a list of 1 to 4096 CPUs");
        }
        std::vector<int64_t> threads(j.size(), -1);
        for (const json& cpu : j) {
          const int64_t index = cpu.at("cpu-index").get<int64_t>();
          if (index < 0 || static_cast<size_t>(index) >= j.size()) {
            return BadDataError("query-cpus-fast: cpu-index out of range");
          }
          threads[static_cast<size_t>(index)] = cpu.at("thread-id").get<int64_t>();
        }
        return threads;
      });
}

Result<std::string> ParseAccel(std::string_view json_text) {
  return WithJson<std::string>(json_text, "query-kvm", [](const json& j) {
    return std::string(j.at("enabled").get<bool>() ? "kvm" : "tcg");
  });
}

}  // namespace vmemfs::drivers
