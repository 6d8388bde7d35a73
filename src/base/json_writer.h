// A streaming JSON writer into a std::string, for large generated files (a kernel's ISF is
// tens of MiB): no document tree is built, so memory is the output and nothing more.
//
// Strings come from hostile guests (names in BTF and kallsyms), so every byte is escaped as
// needed for the output to be valid JSON and valid UTF-8: quotes, backslashes and control
// characters as JSON escapes, bytes >= 0x80 as \u00XX (read back, they are Latin-1 characters).
// The caller keeps keys unique within an object; the writer keeps commas and nesting right.
#ifndef VMEMFS_BASE_JSON_WRITER_H_
#define VMEMFS_BASE_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vmemfs {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(*out) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  // The key of the next value in the current object.
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Bool(bool value);

  // Nesting depth now (0: at the top level).
  size_t depth() const { return first_.size(); }
  size_t size() const { return out_.size(); }

 private:
  void Open(char bracket);
  void Close(char bracket);
  void BeforeValue();
  void Quoted(std::string_view text);

  std::string& out_;
  std::vector<bool> first_;  // per open object/array: no element written yet
  bool after_key_ = false;
};

}  // namespace vmemfs

#endif  // VMEMFS_BASE_JSON_WRITER_H_
