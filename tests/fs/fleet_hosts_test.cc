#include "fs/fleet_hosts.h"

#include <gtest/gtest.h>

namespace vmemfs::fs {
namespace {

TEST(FleetHostsTest, HostComesFromTheUri) {
  EXPECT_EQ(HostOfLibvirtUri("qemu+ssh://root@web1:2222/system"), "web1");
  EXPECT_EQ(HostOfLibvirtUri("qemu+tcp://127.0.0.1:16509/system"), "127.0.0.1");
  EXPECT_EQ(HostOfLibvirtUri("qemu+tls://[fd00::1]:16514/system"), "fd00::1");
  EXPECT_EQ(HostOfLibvirtUri("qemu+ssh://db?keyfile=/k"), "db");
  EXPECT_EQ(HostOfLibvirtUri("qemu:///system"), "localhost");
  EXPECT_EQ(HostOfLibvirtUri("qemu+unix:///system?socket=/run/x.sock"), "localhost");
}

TEST(FleetHostsTest, NamedOrFromTheUri) {
  auto hosts = ParseFleetHosts({"qemu:///system", "db=qemu+ssh://root@10.0.0.5/system"});
  ASSERT_TRUE(hosts) << hosts.error().ToString();
  ASSERT_EQ(hosts->size(), 2u);
  EXPECT_EQ((*hosts)[0], (FleetHost{"localhost", "qemu:///system"}));
  EXPECT_EQ((*hosts)[1], (FleetHost{"db", "qemu+ssh://root@10.0.0.5/system"}));
}

TEST(FleetHostsTest, ACollisionAsksForAName) {
  auto hosts = ParseFleetHosts({"qemu+tcp://h:1/system", "qemu+tcp://h:2/system"});
  ASSERT_FALSE(hosts);
  EXPECT_NE(hosts.error().message().find("NAME="), std::string::npos);
  EXPECT_TRUE(ParseFleetHosts({"a=qemu+tcp://h:1/system", "qemu+tcp://h:2/system"}));
}

TEST(FleetHostsTest, BadNamesAreRefused) {
  EXPECT_FALSE(ParseFleetHosts({"..=qemu:///system", "qemu+ssh://x/system"}));
  EXPECT_FALSE(ParseFleetHosts({"a=", "qemu+ssh://x/system"}));
}

}  // namespace
}  // namespace vmemfs::fs
