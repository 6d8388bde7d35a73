#include "vmi/linux/offsets_file.h"

#include <cctype>
#include <charconv>
#include <vector>

#include "vmi/linux/system_map.h"

namespace vmemfs::vmi::linux_os {
namespace {

// A LibVMI key and the member it gives.
struct KnownOffset {
  std::string_view key;
  std::string_view type;
  std::string_view member;
  uint64_t size;
};
constexpr KnownOffset kKnown[] = {
    {"linux_tasks", "task_struct", "tasks", 16}, {"linux_mm", "task_struct", "mm", 8},
    {"linux_pid", "task_struct", "pid", 4},      {"linux_name", "task_struct", "comm", 16},
    {"linux_pgd", "mm_struct", "pgd", 8},
};
constexpr uint64_t kMaxOffset = 1 << 20;  // no kernel struct is a MiB

struct Token {
  enum Kind { kWord, kString, kPunct } kind;
  std::string text;
  size_t line;
};

class Lexer {
 public:
  Lexer(std::string_view text, std::string_view name) : text_(text), name_(name) {}
  Result<std::vector<Token>> All();

 private:
  Status Error(std::string why) const {
    return BadDataError(std::string(name_) + ":" + std::to_string(line_) + ": " + why);
  }
  void SkipSpaceAndComments();
  std::string_view text_;
  std::string_view name_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

void Lexer::SkipSpaceAndComments() {
  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (c == '\n') ++line_;
    if (c == '#') {
      while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      continue;
    }
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return;
    ++pos_;
  }
}

Result<std::vector<Token>> Lexer::All() {
  std::vector<Token> tokens;
  for (SkipSpaceAndComments(); pos_ < text_.size(); SkipSpaceAndComments()) {
    char c = text_[pos_];
    if (c == '{' || c == '}' || c == '=' || c == ';') {
      tokens.push_back({Token::kPunct, std::string(1, c), line_});
      ++pos_;
    } else if (c == '"') {
      size_t end = text_.find('"', pos_ + 1);
      size_t nl = text_.find('\n', pos_ + 1);
      if (end == text_.npos || nl < end) return Error("unterminated string");
      tokens.push_back(
          {Token::kString, std::string(text_.substr(pos_ + 1, end - pos_ - 1)), line_});
      pos_ = end + 1;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') {
      size_t start = pos_;
      while (pos_ < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_' ||
              text_[pos_] == '-' || text_[pos_] == '.')) {
        ++pos_;
      }
      tokens.push_back({Token::kWord, std::string(text_.substr(start, pos_ - start)), line_});
    } else {
      return Error("unexpected character '" + std::string(std::isprint(c) ? 1 : 0, c) + "'");
    }
  }
  return tokens;
}

bool ParseNumber(std::string_view s, uint64_t* out) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

class OffsetsKernelTypes final : public KernelTypes {
 public:
  OffsetsKernelTypes(std::string name, const std::map<std::string, uint64_t, std::less<>>& offsets)
      : name_(std::move(name)), offsets_(offsets) {}

  Result<uint64_t> Size(std::string_view type) const override {
    return NotFoundError(name_ + ": no size of " + std::string(type) + " (" + kOnly + ")");
  }
  Result<MemberInfo> Member(std::string_view type, std::string_view path) const override {
    for (const KnownOffset& k : kKnown) {
      if (k.type != type || k.member != path) continue;
      auto it = offsets_.find(k.key);
      if (it == offsets_.end()) break;
      return MemberInfo{.offset = it->second, .size = k.size};
    }
    return NotFoundError(name_ + ": no " + std::string(type) + "." + std::string(path) + " (" +
                         kOnly + ")");
  }
  Result<int64_t> Enumerator(std::string_view enum_type, std::string_view name) const override {
    return NotFoundError(name_ + ": no enum " + std::string(enum_type) + "." + std::string(name) +
                         " (" + kOnly + ")");
  }

 private:
  static constexpr const char* kOnly =
      "LibVMI offsets give only linux_tasks, linux_mm, linux_pid, linux_name, linux_pgd";
  std::string name_;
  std::map<std::string, uint64_t, std::less<>> offsets_;
};

// Parser state over the tokens: BLOCK '{' (KEY '=' VALUE ';')* '}'.
class Parser {
 public:
  Parser(std::vector<Token> tokens, std::string_view name)
      : tokens_(std::move(tokens)), name_(name) {}
  Result<OffsetsFile> Parse();

 private:
  Status Error(std::string why) const {
    return ErrorAt(tokens_.empty() ? 1 : tokens_[std::min(i_, tokens_.size() - 1)].line, why);
  }
  Status ErrorAt(size_t line, std::string why) const {
    return BadDataError(std::string(name_) + ":" + std::to_string(line) + ": " + why);
  }
  bool Punct(char c) const {
    return i_ < tokens_.size() && tokens_[i_].kind == Token::kPunct && tokens_[i_].text[0] == c;
  }
  Status Entry(OffsetsFile& out);

  std::vector<Token> tokens_;
  std::string_view name_;
  size_t i_ = 0;
};

Status Parser::Entry(OffsetsFile& out) {
  if (tokens_[i_].kind != Token::kWord) return Error("expected a key");
  size_t line = tokens_[i_].line;  // errors name the entry's line, not the next token's
  auto Error = [&](std::string why) { return ErrorAt(line, std::move(why)); };
  std::string key = tokens_[i_++].text;
  if (!Punct('=')) return Error("expected '=' after " + key.substr(0, 64));
  ++i_;
  if (i_ >= tokens_.size() || tokens_[i_].kind == Token::kPunct) return Error("no value");
  const Token& value = tokens_[i_++];
  if (!Punct(';')) return Error("expected ';' after the value of " + key.substr(0, 64));
  ++i_;
  if (key == "ostype") {
    if (value.text != "Linux")
      return Error("ostype is '" + value.text.substr(0, 32) + "', not Linux");
  } else if (key == "sysmap") {
    out.sysmap = value.text;
  } else if (key.rfind("linux_", 0) == 0) {
    uint64_t n;
    if (value.kind != Token::kWord || !ParseNumber(value.text, &n) || n > kMaxOffset) {
      return Error("bad offset for " + key.substr(0, 64) + ": '" + value.text.substr(0, 32) + "'");
    }
    if (!out.offsets.emplace(key, n).second) return Error(key.substr(0, 64) + " given twice");
  }  // other keys (win_*, freebsd_*, volatility_ist, ...) do not concern a Linux kernel
  return Status();
}

Result<OffsetsFile> Parser::Parse() {
  OffsetsFile out;
  if (tokens_.empty()) return Error("empty (no guest block)");
  if (tokens_[0].kind != Token::kWord && tokens_[0].kind != Token::kString) {
    return Error("expected a guest name");
  }
  out.block = tokens_[i_++].text;
  if (!Punct('{')) return Error("expected '{' after the guest name");
  for (++i_; !Punct('}');) {
    if (i_ >= tokens_.size()) return Error("unterminated block " + out.block.substr(0, 64));
    VMEMFS_TRY(Entry(out));
  }
  ++i_;
  if (i_ < tokens_.size()) return Error("more than one guest block (keep only this kernel's)");
  if (out.offsets.empty()) return Error("no linux_* offsets in block " + out.block.substr(0, 64));
  return out;
}

}  // namespace

Result<OffsetsFile> ParseOffsetsFile(std::string_view text, std::string_view name) {
  VMEMFS_ASSIGN_OR_RETURN(std::vector<Token> tokens, Lexer(text, name).All());
  VMEMFS_ASSIGN_OR_RETURN(OffsetsFile out, Parser(std::move(tokens), name).Parse());
  out.types = std::make_unique<OffsetsKernelTypes>(std::string(name), out.offsets);
  return out;
}

Result<OffsetsFile> ReadOffsetsFile(const std::string& path) {
  VMEMFS_ASSIGN_OR_RETURN(std::string text, ReadOverrideFile(path, kMaxOffsetsFileBytes));
  return ParseOffsetsFile(text, path);
}

}  // namespace vmemfs::vmi::linux_os
