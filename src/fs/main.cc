// vmemfs: mount virtual machines' memory as files.
//
//   vmemfs [OPTIONS] SOURCE... MOUNTPOINT      SOURCE = [NAME=]PATH or [NAME=]SCHEME:...
//
// Every input is checked before anything is mounted: a bad source gives a one-line error and
// a non-zero exit status.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fs/daemon.h"
#include "fs/fleet_hosts.h"
#include "fs/fuse_server.h"
#include "fs/host_set_provider.h"
#include "fs/info_line.h"
#include "fs/mount_options.h"
#include "fs/tree.h"
#include "fs/vm.h"
#include "fs/vm_directory.h"
#include "fs/vm_name.h"
#include "fs/vm_set_provider.h"
#include "vmi/os_registry.h"
#include "vmi/sources.h"

namespace {

using vmemfs::Result;
using vmemfs::Status;

struct Source {
  std::string name;
  std::string spec;
};

// "NAME=SPEC" when the part before '=' could be a name (no '/'); otherwise SPEC alone, named
// after the file without directory and extension. Write ./a=b to mean a file called "a=b".
Source ParseSource(const std::string& arg) {
  auto eq = arg.find('=');
  if (eq != std::string::npos && eq > 0 && arg.find('/') > eq) {
    return {arg.substr(0, eq), arg.substr(eq + 1)};
  }
  std::string base = arg.substr(arg.find_last_of('/') + 1);
  if (auto colon = base.find(':'); colon != std::string::npos && arg.find('/') > colon) {
    base = base.substr(colon + 1);  // SCHEME:REST: name after the rest
  }
  if (auto dot = base.find_last_of('.'); dot != std::string::npos && dot > 0) base.resize(dot);
  return {base, arg};
}

Result<std::vector<std::unique_ptr<vmemfs::fs::Vm>>> OpenAll(
    const std::vector<std::string>& args, bool writable,
    const std::shared_ptr<const vmemfs::vmi::OsFinders>& os) {
  std::vector<std::unique_ptr<vmemfs::fs::Vm>> vms;
  std::set<std::string> names;
  for (const std::string& arg : args) {
    Source source = ParseSource(arg);
    if (Status s = vmemfs::fs::CheckVmName(source.name); !s.ok()) {
      return vmemfs::InvalidArgumentError(vmemfs::fs::OneLine(arg) + ": cannot name a directory '" +
                                          vmemfs::fs::OneLine(source.name) + "' (" + s.message() +
                                          "); use NAME=" + vmemfs::fs::OneLine(arg));
    }
    if (!names.insert(source.name).second) {
      return vmemfs::InvalidArgumentError(arg + ": the name '" + source.name +
                                          "' is taken; use NAME=" + arg);
    }
    auto vm = vmemfs::fs::OpenVm(source.name, source.spec, writable, os);
    if (!vm) return vm.error();
    vms.push_back(std::move(*vm));
  }
  return vms;
}

Status CheckMountpoint(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return vmemfs::OsError(path);
  if (!S_ISDIR(st.st_mode)) return vmemfs::InvalidArgumentError(path + ": not a directory");
  return Status();
}

// One line, whatever a path or a guest put into the message.
int Fail(const Status& s) {
  std::string text = vmemfs::fs::OneLine(s.message().empty() ? s.ToString() : s.message());
  fprintf(stderr, "vmemfs: %s\n", text.c_str());
  return 1;
}


// The root's entries for the --libvirt connections. One: its domains, and the mount fails if it
// cannot connect. More: a fleet, one directory per host; a host that is down now is connected in
// the background (a fleet mounts with some hosts down, and they appear as they come up).
Result<std::unique_ptr<vmemfs::fs::DirectoryProvider>> LibvirtRoot(
    const std::vector<std::string>& args, bool writable,
    const std::shared_ptr<const vmemfs::vmi::OsFinders>& os) {
  if (args.size() == 1) {
    VMEMFS_ASSIGN_OR_RETURN(auto set, vmemfs::vmi::OpenGuestSet("libvirt:" + args[0]));
    return vmemfs::fs::MakeVmSetProvider(std::move(set), writable, os);
  }
  VMEMFS_ASSIGN_OR_RETURN(auto hosts, vmemfs::fs::ParseFleetHosts(args));
  std::vector<vmemfs::fs::HostSet> sets;
  for (const auto& h : hosts) {
    VMEMFS_ASSIGN_OR_RETURN(auto set,
                            vmemfs::vmi::OpenGuestSet("libvirt:" + h.uri, /*must_connect=*/false));
    sets.push_back({h.name, std::move(set)});
  }
  return vmemfs::fs::MakeHostSetProvider(std::move(sets), writable, os);
}

// The long names (without "--") of the options an `-o key[=value]` item may set: all but the
// ones that only print something.
bool IsMountableOption(const CLI::App& app, const std::string& key) {
  if (key.empty() || key == "help" || key == "version") return false;
  for (const CLI::Option* opt : app.get_options()) {
    const auto& names = opt->get_lnames();
    if (std::find(names.begin(), names.end(), key) != names.end()) return true;
  }
  return false;
}

// argv without argv[0], with -o items that name vmemfs options turned into those options.
std::vector<std::string> ExpandedArgs(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return vmemfs::fs::ExpandMountOptions(
      args, [&app](const std::string& key) { return IsMountableOption(app, key); });
}

// Three commands that work as written once their paths exist; --help ends with them.
constexpr const char* kExamples =
    "\nExamples:\n"
    "  vmemfs web=/srv/dumps/web.elf /mnt/vm\n"
    "      a snapshot (virsh dump --memory-only web /srv/dumps/web.elf) as /mnt/vm/web/\n"
    "  vmemfs -o allow_other db=qemu:/run/db.qmp /mnt/vm\n"
    "      a running QEMU started with -qmp unix:/run/db.qmp,server=on,wait=off\n"
    "  vmemfs --libvirt qemu:///system --libvirt qemu+ssh://root@web1/system /mnt/fleet\n"
    "      two libvirt hosts' domains: /mnt/fleet/localhost/<domain>/, /mnt/fleet/web1/<domain>/\n";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmemfs: virtual machines' memory as files"};
  std::string footer = "\nSOURCE is [NAME=]PATH or [NAME=]SCHEME:...; backends:\n";
  for (const auto& line : vmemfs::vmi::DescribeSources()) footer += "  " + line + "\n";
  footer +=
      "\nEach SOURCE becomes MOUNTPOINT/NAME/ (NAME defaults to the file name without its\n"
      "extension) with pmem, kmem, info and vcpu/<n>/. Unmount with: fusermount3 -u MOUNTPOINT\n"
      "\nEvery long option is also an -o item (-o libvirt=URI,write-memory), for mount(8) and\n"
      "fstab: mount -t fuse.vmemfs SOURCE MOUNTPOINT -o ...; SOURCE 'none' stands for no SOURCE.\n"
      "Other -o items are FUSE mount options (rw, ro, nosuid, allow_other, ...).\n";
  footer += kExamples;
  app.footer(footer);
  app.set_version_flag("-V,--version", std::string("vmemfs ") + VMEMFS_VERSION);

  std::vector<std::string> positional;
  vmemfs::fs::ServeOptions serve;
  app.add_option("SOURCE... MOUNTPOINT", positional, "memory sources, then the mount point")
      ->required()
      ->expected(1, -1);
  app.add_flag("-f,--foreground", serve.foreground, "stay in the foreground");
  app.add_flag("-s,--single-threaded", serve.single_threaded, "serve requests on one thread");
  app.add_flag("-d,--debug", serve.debug, "print FUSE requests (implies -f)");
  // One value per -o, wherever it stands: without allow_extra_args(false) CLI11 lets a
  // vector option swallow every argument after it, SOURCEs and MOUNTPOINT included.
  app.add_option("-o", serve.fuse_options,
                 "mount options: a long option as key[=value], or a FUSE one (allow_other)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  // Not "--rw": mount(8) passes -o rw to every mount, and writing to a guest stays opt-in.
  app.add_flag("--write-memory", serve.writable,
               "allow writes to guest memory and registers (default: read-only)");
  std::vector<std::string> libvirt_uris;
  app.add_option("--libvirt", libvirt_uris,
                 "also show every running domain of this libvirt connection (e.g. qemu:///system), "
                 "as domains start and stop; repeat it for a fleet, MOUNTPOINT/HOST/DOMAIN/ "
                 "(HOST from the URI, or --libvirt HOST=URI)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--threads", serve.max_threads, "maximum FUSE worker threads")
      ->check(CLI::Range(1u, 64u));
  // Overrides for exotic kernels (never needed with BTF); they apply to every SOURCE.
  vmemfs::vmi::OsOverrides overrides;
  app.add_option("--symbols", overrides.system_map,
                 "a System.map for Linux kernels whose kallsyms cannot be found");
  app.add_option("--isf", overrides.isf,
                 "a Volatility 3 ISF JSON: struct layouts (and symbols) for kernels without BTF");
  app.add_option("--offsets", overrides.offsets,
                 "a LibVMI offsets file (one guest block; too few offsets for a process list)");
  std::vector<std::string> args = ExpandedArgs(app, argc, argv);
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector last argument first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  serve.mountpoint = positional.back();
  positional.pop_back();
  std::erase(positional, std::string(vmemfs::fs::kNoSource));
  if (positional.empty() && libvirt_uris.empty()) {
    return Fail(vmemfs::InvalidArgumentError("no SOURCE (and no --libvirt URI) to mount"));
  }
  serve.foreground = serve.foreground || serve.debug;

  if (Status s = CheckMountpoint(serve.mountpoint); !s.ok()) return Fail(s);
  auto os_finders = vmemfs::vmi::OsFinders::Create(overrides);
  if (!os_finders) return Fail(os_finders.error());

  // From here on threads may start (libvirt, live drivers): go to the background first. The
  // terminal still sees every error below, and the exit status says whether the mount came up.
  vmemfs::fs::Daemon daemon(serve.foreground);
  auto failed = [&daemon](const Status& s) {
    int rc = Fail(s);
    daemon.Failed();
    return rc;
  };
  auto vms = OpenAll(positional, serve.writable, *os_finders);
  if (!vms) return failed(vms.error());

  vmemfs::fs::Tree tree;
  for (const auto& vm : *vms) {
    if (vm->guest->live()) serve.cache_timeout = 1.0;  // processes come and go
    Status s = vmemfs::fs::AddVmDirectory(tree, *vm->guest, {vm->name, vm->spec});
    if (!s.ok()) return failed(s);
  }
  if (!libvirt_uris.empty()) {
    serve.cache_timeout = 1.0;  // domains come and go
    auto root = LibvirtRoot(libvirt_uris, serve.writable, *os_finders);
    if (!root) return failed(root.error());
    tree.SetRootProvider(std::move(*root));
  }
  if (Status s = vmemfs::fs::Serve(tree, serve, [&daemon] { daemon.Ready(); }); !s.ok()) {
    return failed(s);
  }
  return 0;
}
