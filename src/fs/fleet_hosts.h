// The names of a fleet's hosts: with more than one `--libvirt`, each connection is a directory
// MOUNT/<host>/ of its domains, and this decides <host>.
//
// `--libvirt NAME=URI` names it NAME. Otherwise the name is the URI's host, without user and
// port ("qemu+ssh://root@web1:2222/system" is "web1"); a URI that names no host
// ("qemu:///system", "qemu+unix:///session") is "localhost". Two connections that would get the
// same name are an error that says to name one of them: a guessed suffix would make the
// directory of a host depend on the order of the command line.
#ifndef VMEMFS_FS_FLEET_HOSTS_H_
#define VMEMFS_FS_FLEET_HOSTS_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace vmemfs::fs {

struct FleetHost {
  std::string name;  // the directory
  std::string uri;   // the libvirt connection
  bool operator==(const FleetHost&) const = default;
};

// The host part of a libvirt URI, or "localhost" when it names none.
std::string HostOfLibvirtUri(std::string_view uri);

// One FleetHost per `--libvirt` value ("URI" or "NAME=URI"; NAME is what precedes a '=' that
// comes before any ':'). Errors: kInvalidArgument for a name that cannot be a directory or
// that two connections share, naming both.
Result<std::vector<FleetHost>> ParseFleetHosts(const std::vector<std::string>& args);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_FLEET_HOSTS_H_
