#include "vmi/linux/offsets_file.h"

#include <gtest/gtest.h>

#include "vmi/linux/task_layout.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr char kConf[] = R"(# a libvmi.conf with one guest
debian12 {
    ostype = "Linux";
    sysmap = "/boot/System.map-6.1.0-18-amd64";
    linux_name = 0x758;
    linux_tasks = 0x458;
    linux_mm = 0x4a8;
    linux_pid = 0x550;
    linux_pgd = 80;
    win_tasks = 0x88;
}
)";

TEST(OffsetsFileTest, ParsesTheFiveLinuxOffsets) {
  auto f = ParseOffsetsFile(kConf, "conf");
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_EQ(f->block, "debian12");
  EXPECT_EQ(f->sysmap, "/boot/System.map-6.1.0-18-amd64");
  EXPECT_EQ(f->offsets.size(), 5u);
  auto comm = f->types->Member("task_struct", "comm");
  ASSERT_TRUE(comm);
  EXPECT_EQ(comm->offset, 0x758u);
  EXPECT_EQ(comm->size, 16u);
  EXPECT_EQ(f->types->Member("mm_struct", "pgd")->offset, 80u);
  EXPECT_EQ(f->types->Member("task_struct", "tasks")->offset, 0x458u);
}

TEST(OffsetsFileTest, EverythingElseIsNotFoundAndSaysWhy) {
  auto f = ParseOffsetsFile(kConf, "conf");
  ASSERT_TRUE(f);
  auto tgid = f->types->Member("task_struct", "tgid");
  ASSERT_FALSE(tgid);
  EXPECT_EQ(tgid.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(tgid.error().message().find("LibVMI offsets give only"), std::string::npos);
  EXPECT_FALSE(f->types->Size("task_struct"));
  // The task walker cannot work from five offsets; its error names what is missing.
  auto layout = ResolveTaskLayout(*f->types);
  ASSERT_FALSE(layout);
  EXPECT_NE(layout.error().message().find("task_struct"), std::string::npos)
      << layout.error().message();
}

TEST(OffsetsFileTest, ErrorsNameFileAndLine) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"", "c:1: empty"},
      {"g {\n linux_pid = 0x55z;\n}\n", "c:2: bad offset for linux_pid"},
      {"g {\n linux_pid 1;\n}\n", "c:2: expected '='"},
      {"g {\n linux_pid = 1\n}\n", "c:2: expected ';'"},
      {"g {\n linux_pid = 1;\n", "unterminated block"},
      {"g {\n ostype = \"Windows\";\n linux_pid = 1;\n}\n", "c:2: ostype is 'Windows'"},
      {"g { linux_pid = 1; }\nh { linux_pid = 2; }\n", "c:2: more than one guest block"},
      {"g {\n win_tasks = 1;\n}\n", "no linux_* offsets"},
      {"g {\n linux_pid = 1;\n linux_pid = 2;\n}\n", "c:3: linux_pid given twice"},
      {"g {\n linux_pid = 99999999999999999999;\n}\n", "c:2: bad offset"},
      {"g {\n sysmap = \"x\n\";\n}\n", "c:2: unterminated string"},
  };
  for (const Case& c : cases) {
    auto r = ParseOffsetsFile(c.text, "c");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message().find(c.want), std::string::npos)
        << c.text << " -> " << r.error().message();
  }
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
