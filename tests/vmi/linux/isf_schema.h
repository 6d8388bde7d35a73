// Checks a JSON document against what Volatility 3's ISF schema (format 6.2.0, the version
// vmemfs writes) requires, as read in Volatility's schemas/schema-6.2.0.json: the required
// keys and their JSON types, the allowed values of `kind` and friends, and no keys the schema
// forbids (it closes every object but the producer). Plus what the schema cannot say but
// Volatility needs to load the types: every struct/union/enum/base name a descriptor or an
// enum refers to is defined.
#ifndef VMEMFS_TESTS_VMI_LINUX_ISF_SCHEMA_H_
#define VMEMFS_TESTS_VMI_LINUX_ISF_SCHEMA_H_

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace vmemfs::testing {

class IsfSchemaCheck {
 public:
  using Json = nlohmann::json;

  // Every violation found, as "where: what" (at most `max` of them).
  static std::vector<std::string> Errors(const Json& isf, size_t max = 20) {
    IsfSchemaCheck c(isf, max);
    c.Document();
    return c.errors_;
  }

 private:
  IsfSchemaCheck(const Json& isf, size_t max) : isf_(isf), max_(max) {}

  void Fail(const std::string& where, const std::string& what) {
    if (errors_.size() < max_) errors_.push_back(where + ": " + what);
  }
  // `obj` is an object with exactly keys from `allowed`, including every one of `required`.
  bool Keys(const Json& obj, const std::string& where, const std::set<std::string>& required,
            const std::set<std::string>& allowed) {
    if (!obj.is_object()) {
      Fail(where, "not an object");
      return false;
    }
    for (const std::string& k : required) {
      if (!obj.contains(k)) Fail(where, "missing required key " + k);
    }
    for (const auto& [k, v] : obj.items()) {
      if (!allowed.contains(k)) Fail(where, "key not allowed: " + k);
    }
    return true;
  }
  void IsInt(const Json& obj, const std::string& key, const std::string& where) {
    if (obj.contains(key) && !obj[key].is_number_integer()) Fail(where, key + " not an integer");
  }
  void IsString(const Json& obj, const std::string& key, const std::string& where,
                const char* pattern = nullptr) {
    if (!obj.contains(key)) return;
    if (!obj[key].is_string()) return Fail(where, key + " not a string");
    if (pattern && !std::regex_match(obj[key].get<std::string>(), Regex(pattern))) {
      Fail(where, key + " '" + obj[key].get<std::string>() + "' does not match " + pattern);
    }
  }
  static const std::regex& Regex(const char* pattern) {
    static std::map<std::string, std::regex> compiled;  // tests are single-threaded
    auto it = compiled.find(pattern);
    if (it == compiled.end()) it = compiled.emplace(pattern, std::regex(pattern)).first;
    return it->second;
  }
  void IsBool(const Json& obj, const std::string& key, const std::string& where) {
    if (obj.contains(key) && !obj[key].is_boolean()) Fail(where, key + " not a boolean");
  }
  bool Defined(const char* table, const Json& name) {
    return name.is_string() && isf_.contains(table) && isf_[table].contains(name.get<std::string>());
  }

  void Document() {
    if (!Keys(isf_, "/", {"metadata", "base_types", "user_types", "enums", "symbols"},
              {"metadata", "base_types", "user_types", "enums", "symbols"})) {
      return;
    }
    Metadata(isf_["metadata"]);
    for (const char* table : {"base_types", "user_types", "enums", "symbols"}) {
      if (!isf_[table].is_object()) Fail(table, "not an object");
    }
    for (const auto& [name, t] : isf_["base_types"].items()) BaseType(t, "base_types/" + name);
    for (const auto& [name, t] : isf_["user_types"].items()) UserType(t, "user_types/" + name);
    for (const auto& [name, e] : isf_["enums"].items()) Enum(e, "enums/" + name);
    for (const auto& [name, s] : isf_["symbols"].items()) Symbol(s, "symbols/" + name);
  }

  // The Linux variant of element_metadata (one of four the schema allows).
  void Metadata(const Json& m) {
    if (!Keys(m, "metadata", {"format", "linux"}, {"format", "producer", "linux"})) return;
    IsString(m, "format", "metadata", R"(^6.[0-9]+.[0-9]+$)");
    if (m.contains("producer")) {
      if (!m["producer"].is_object()) Fail("metadata/producer", "not an object");
      IsString(m["producer"], "name", "metadata/producer");
      IsString(m["producer"], "version", "metadata/producer");
    }
    if (!Keys(m["linux"], "metadata/linux", {}, {"symbols", "types"})) return;
    for (const char* list : {"symbols", "types"}) {
      if (!m["linux"].contains(list)) continue;
      if (!m["linux"][list].is_array()) Fail("metadata/linux", std::string(list) + " not an array");
      for (const Json& item : m["linux"][list]) {
        std::string where = std::string("metadata/linux/") + list;
        if (!Keys(item, where, {}, {"kind", "name", "hash_type", "hash_value"})) continue;
        IsString(item, "kind", where, "^(dwarf|symtab|system-map)$");
        IsString(item, "name", where);
        IsString(item, "hash_type", where, "^(sha256)$");
        IsString(item, "hash_value", where, "^[a-fA-F0-9]+$");
      }
    }
  }

  void BaseType(const Json& t, const std::string& where) {
    if (!Keys(t, where, {"size", "kind", "signed", "endian"}, {"size", "kind", "signed", "endian"})) {
      return;
    }
    IsInt(t, "size", where);
    IsString(t, "kind", where, "^(void|int|float|char|bool)$");
    IsBool(t, "signed", where);
    IsString(t, "endian", where, "^(little|big)$");
  }

  void UserType(const Json& t, const std::string& where) {
    if (!Keys(t, where, {"kind", "size", "fields"}, {"kind", "size", "fields"})) return;
    IsString(t, "kind", where, "^(struct|union|class)$");
    IsInt(t, "size", where);
    if (!t["fields"].is_object()) return Fail(where, "fields not an object");
    for (const auto& [name, f] : t["fields"].items()) {
      std::string fw = where + "/" + name;
      if (!Keys(f, fw, {"type", "offset"}, {"type", "offset", "anonymous"})) continue;
      IsInt(f, "offset", fw);
      IsBool(f, "anonymous", fw);
      Descriptor(f["type"], fw);
    }
  }

  void Enum(const Json& e, const std::string& where) {
    if (!Keys(e, where, {"size", "base", "constants"}, {"size", "base", "constants"})) return;
    IsInt(e, "size", where);
    IsString(e, "base", where);
    if (!Defined("base_types", e["base"])) Fail(where, "base is not a base type");
    if (!e["constants"].is_object()) return Fail(where, "constants not an object");
    for (const auto& [name, v] : e["constants"].items()) {
      if (!v.is_number_integer()) Fail(where + "/" + name, "not an integer");
    }
  }

  void Symbol(const Json& s, const std::string& where) {
    if (!Keys(s, where, {"address"}, {"address", "linkage_name", "type", "constant_data"})) return;
    if (!s["address"].is_number()) Fail(where, "address not a number");
    IsString(s, "linkage_name", where);
    IsString(s, "constant_data", where, "^[A-Za-z0-9+/]*=*$");
    if (s.contains("type")) Descriptor(s["type"], where + "/type");
  }

  // type_descriptor: one of pointer, base, array, struct/class/union, enum, function, bitfield.
  void Descriptor(const Json& d, const std::string& where, int depth = 0) {
    if (depth > 64) return Fail(where, "descriptor nests too deep");
    if (!d.is_object() || !d.contains("kind") || !d["kind"].is_string()) {
      return Fail(where, "descriptor without a kind");
    }
    std::string kind = d["kind"];
    if (kind == "pointer") {
      if (!Keys(d, where, {"kind", "subtype"}, {"kind", "base", "subtype"})) return;
      IsString(d, "base", where);
      Descriptor(d["subtype"], where, depth + 1);
    } else if (kind == "base") {
      if (!Keys(d, where, {"kind", "name"}, {"kind", "name"})) return;
      if (!Defined("base_types", d["name"])) Fail(where, "undefined base type " + d["name"].dump());
    } else if (kind == "array") {
      if (!Keys(d, where, {"kind", "subtype", "count"}, {"kind", "subtype", "count"})) return;
      IsInt(d, "count", where);
      Descriptor(d["subtype"], where, depth + 1);
    } else if (kind == "struct" || kind == "class" || kind == "union") {
      if (!Keys(d, where, {"kind", "name"}, {"kind", "name"})) return;
      if (!Defined("user_types", d["name"])) Fail(where, "undefined user type " + d["name"].dump());
    } else if (kind == "enum") {
      if (!Keys(d, where, {"kind", "name"}, {"kind", "name"})) return;
      if (!Defined("enums", d["name"])) Fail(where, "undefined enum " + d["name"].dump());
    } else if (kind == "function") {
      Keys(d, where, {"kind"}, {"kind"});
    } else if (kind == "bitfield") {
      if (!Keys(d, where, {"kind", "bit_position", "bit_length", "type"},
                {"kind", "bit_position", "bit_length", "type"})) {
        return;
      }
      IsInt(d, "bit_position", where);
      IsInt(d, "bit_length", where);
      const Json& t = d["type"];
      if (!t.is_object() || !(t.value("kind", "") == "base" || t.value("kind", "") == "enum")) {
        return Fail(where, "bitfield type is neither base nor enum");
      }
      Descriptor(t, where, depth + 1);
    } else {
      Fail(where, "unknown descriptor kind " + kind);
    }
  }

  const Json& isf_;
  const size_t max_;
  std::vector<std::string> errors_;
};

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_VMI_LINUX_ISF_SCHEMA_H_
