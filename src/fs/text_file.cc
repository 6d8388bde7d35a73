#include "fs/text_file.h"

#include <unistd.h>

#include <algorithm>
#include <mutex>

namespace vmemfs::fs {
namespace {

class TextHandle : public Handle {
 public:
  explicit TextHandle(const std::string& text) : text_(text) {}
  explicit TextHandle(std::string&& text) : owned_(std::move(text)), text_(owned_) {}

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
  const std::string owned_;  // for text made for this open only
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

// A text made for one open, plus what writes do.
class LiveTextHandle : public TextHandle {
 public:
  LiveTextHandle(std::string text, const WriteHandler& on_write)
      : TextHandle(std::move(text)), on_write_(on_write) {
    keep_cache = false;
    direct_io = true;  // the size changes between opens
  }
  Result<size_t> Write(uint64_t, std::span<const std::byte> data) override {
    if (!on_write_) return UnsupportedError("file is not writable");
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    constexpr std::string_view kSpace = " \t\r\n";
    text.remove_prefix(std::min(text.find_first_not_of(kSpace), text.size()));
    text.remove_suffix(text.size() - (text.find_last_not_of(kSpace) + 1));
    VMEMFS_TRY(on_write_(text));
    return data.size();
  }

 private:
  const WriteHandler& on_write_;
};

class LiveTextFile : public File {
 public:
  LiveTextFile(TextGenerator generate, WriteHandler on_write)
      : generate_(std::move(generate)), on_write_(std::move(on_write)) {}
  uint64_t Size() const override {
    auto text = generate_();
    return text ? text->size() : 0;
  }
  bool writable() const override { return static_cast<bool>(on_write_); }
  Result<std::unique_ptr<Handle>> Open() override {
    VMEMFS_ASSIGN_OR_RETURN(std::string text, generate_());
    return std::unique_ptr<Handle>(std::make_unique<LiveTextHandle>(std::move(text), on_write_));
  }

 private:
  TextGenerator generate_;
  WriteHandler on_write_;
};

}  // namespace

std::unique_ptr<File> MakeLiveTextFile(TextGenerator generate, WriteHandler on_write) {
  return std::make_unique<LiveTextFile>(std::move(generate), std::move(on_write));
}

std::unique_ptr<File> MakeLazyTextFile(TextGenerator generate) {
  return std::make_unique<LazyTextFile>(std::move(generate));
}

std::unique_ptr<File> MakeTextFile(std::string text) {
  return std::make_unique<TextFile>(std::move(text));
}

}  // namespace vmemfs::fs
