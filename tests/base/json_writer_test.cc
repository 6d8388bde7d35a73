#include "base/json_writer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/base64.h"

namespace vmemfs {
namespace {

TEST(JsonWriterTest, NestingAndCommas) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("a");
  w.BeginArray();
  w.Int(-1);
  w.Uint(18446744073709551615ull);
  w.Bool(true);
  w.BeginObject();
  w.EndObject();
  w.EndArray();
  w.Key("b");
  w.String("x");
  w.EndObject();
  EXPECT_EQ(out, R"({"a":[-1,18446744073709551615,true,{}],"b":"x"})");
  EXPECT_EQ(w.depth(), 0u);
}

// Any bytes, as a hostile guest's names may hold, give valid JSON (and valid UTF-8).
TEST(JsonWriterTest, EveryByteIsEscapedAsNeeded) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key(all);
  w.String(all);
  w.EndObject();
  auto j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << out;
  std::string back = j.begin().value();
  ASSERT_EQ(back.size() > 128, true);
  EXPECT_EQ(back.substr(0, 128), all.substr(0, 128));  // ASCII comes back as it was
  EXPECT_EQ(j.begin().key(), back);
}

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64(std::string("\xff\x00\n", 3)), "/wAK");
}

}  // namespace
}  // namespace vmemfs
