#include "fs/text_file.h"

#include <unistd.h>

#include <algorithm>
#include <mutex>

namespace vmemfs::fs {
namespace {

class TextHandle : public Handle {
 public:
  explicit TextHandle(const std::string& text) : text_(text) {}

  Status Read(uint64_t offset, size_t size, ReadPlan& plan) override {
    if (offset >= text_.size()) return Status();
    plan.AddMemory(text_.data() + offset, std::min<uint64_t>(size, text_.size() - offset));
    return Status();
  }

  Result<uint64_t> Seek(uint64_t offset, int whence) override {
    if (offset >= text_.size()) return NotFoundError("past end of file");
    return whence == SEEK_DATA ? offset : text_.size();
  }

 private:
  const std::string& text_;
};

class TextFile : public File {
 public:
  explicit TextFile(std::string text) : text_(std::move(text)) {}
  uint64_t Size() const override { return text_.size(); }
  Result<std::unique_ptr<Handle>> Open() override {
    return std::unique_ptr<Handle>(std::make_unique<TextHandle>(text_));
  }

 private:
  const std::string text_;
};

class LazyTextFile : public File {
 public:
  explicit LazyTextFile(TextGenerator generate) : generate_(std::move(generate)) {}
  uint64_t Size() const override {
    Generate();
    return text_.size();
  }
  Result<std::unique_ptr<Handle>> Open() override {
    Generate();
    if (!status_.ok()) return status_;
    return std::unique_ptr<Handle>(std::make_unique<TextHandle>(text_));
  }

 private:
  void Generate() const {
    std::call_once(once_, [this] {
      auto text = generate_();
      if (text) {
        text_ = std::move(*text);
      } else {
        status_ = text.error();
      }
    });
  }
  TextGenerator generate_;
  mutable std::once_flag once_;
  mutable std::string text_;  // written once, under once_
  mutable Status status_;
};

}  // namespace

std::unique_ptr<File> MakeLazyTextFile(TextGenerator generate) {
  return std::make_unique<LazyTextFile>(std::move(generate));
}

std::unique_ptr<File> MakeTextFile(std::string text) {
  return std::make_unique<TextFile>(std::move(text));
}

}  // namespace vmemfs::fs
