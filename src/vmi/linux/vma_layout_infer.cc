#include "vmi/linux/vma_layout_infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "base/hex.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kVmaBytes = 128;    // read of each vm_area_struct (~100 bytes in 6.1)
constexpr uint64_t kObjBytes = 256;    // read of each file, dentry, inode, super_block, mount
constexpr uint32_t kVmMayread = 0x10, kVmGrowsdown = 0x100;
constexpr int kMaxDepth = 64;          // dentry chain to the root
constexpr size_t kMaxName = 255;       // NAME_MAX

// The first kObjBytes (or n) bytes of a kernel object as 32-bit words.
struct Words {
  std::vector<uint32_t> w;
  uint32_t At(uint64_t off) const { return off / 4 < w.size() ? w[off / 4] : 0; }
};

std::optional<Words> ReadWords(KernelMemory& mem, uint64_t va, uint64_t n = kObjBytes) {
  Words out;
  out.w.resize(n / 4);
  if (!mem.Read(va, std::as_writable_bytes(std::span(out.w))).ok()) return std::nullopt;
  return out;
}

struct V {
  uint64_t start, end;
  size_t sample;
  bool stack, heap;
  Words w;
};

class Inference {
 public:
  Inference(KernelMemory& mem, const VmaInferInput& in) : mem_(mem), in_(in) {}
  Result<InferredVmas> Run();

 private:
  bool Ptr(uint64_t v) const { return v >= in_.page_offset && v % 4 == 0; }
  const Words* Obj(uint64_t va) {
    auto it = cache_.find(va);
    if (it == cache_.end()) it = cache_.emplace(va, ReadWords(mem_, va)).first;
    return it->second ? &*it->second : nullptr;
  }
  std::optional<uint64_t> Flags();
  bool FileLayout(const std::set<uint64_t>& files);
  bool DentryLayout(const std::set<uint64_t>& dentries);
  std::optional<std::vector<uint64_t>> Chain(uint64_t d, uint64_t name_off, uint64_t parent_off);
  bool MountLayout(const std::set<uint64_t>& files);
  bool ReachesRootMount(uint64_t mount, uint64_t r, uint64_t mm, uint64_t po);
  bool InodeLayout(const std::set<uint64_t>& inodes);
  std::optional<std::string> Name(uint64_t dentry, uint64_t name_off);

  KernelMemory& mem_;
  const VmaInferInput& in_;
  std::vector<V> vmas_;
  std::map<uint64_t, std::optional<Words>> cache_;
  std::map<uint64_t, std::string> strings_;  // name pointer -> its string ("" if unreadable)
  VmaLayout l_;
  uint64_t d_inode_ = 0;
};

std::optional<uint64_t> Inference::Flags() {
  if (std::none_of(vmas_.begin(), vmas_.end(), [](const V& v) { return v.stack; })) {
    return std::nullopt;  // VM_GROWSDOWN would have nothing to tell
  }
  for (uint64_t f = 12; f < 64; f += 4) {
    bool ok = true;
    for (const V& v : vmas_) {
      uint32_t x = v.w.At(f);
      ok = ok && (x & kVmMayread) && x < 0x80000000u && (((x & kVmGrowsdown) != 0) == v.stack);
    }
    if (ok) return f;
  }
  return std::nullopt;
}

// f_path {mnt, dentry} at p, f_inode at i, dentry.d_inode at di: dentry->d_inode == f_inode.
bool Inference::FileLayout(const std::set<uint64_t>& files) {
  for (uint64_t p = 0; p + 4 < 48; p += 4) {
    for (uint64_t i = p + 8; i < 64; i += 4) {
      for (uint64_t di = 0; di < 96; di += 4) {
        bool ok = true;
        for (uint64_t f : files) {
          const Words* fw = Obj(f);
          if (!fw) return false;
          uint64_t mnt = fw->At(p), den = fw->At(p + 4), ino = fw->At(i);
          ok = Ptr(mnt) && Ptr(den) && Ptr(ino) && mnt != den && den != ino && mnt != ino;
          const Words* dw = ok ? Obj(den) : nullptr;
          ok = ok && dw && dw->At(di) == ino;
          if (!ok) break;
        }
        if (ok) {
          l_.path.file_path_mnt = p;
          l_.path.file_path_dentry = p + 4;
          l_.file_inode = i;
          d_inode_ = di;
          return true;
        }
      }
    }
  }
  return false;
}

std::optional<std::string> Inference::Name(uint64_t dentry, uint64_t name_off) {
  const Words* d = Obj(dentry);
  if (!d || name_off < 4) return std::nullopt;
  uint64_t ptr = d->At(name_off), len = d->At(name_off - 4);
  if (ptr < in_.page_offset || len == 0 || len > kMaxName) return std::nullopt;
  // The same names are asked for again and again (each offset tried, each chain walked).
  auto [it, fresh] = strings_.try_emplace(ptr);
  if (fresh) it->second = mem_.String(ptr, kMaxName + 1).value_or(std::string());
  const std::string& s = it->second;
  if (s.size() != len) return std::nullopt;
  for (char c : s) {
    if (c < 0x20 || c == 0x7f) return std::nullopt;
  }
  return s;
}

// d_name.name at n (len right before), d_parent at dp: every chain ends in a self-parent "/"
// (the root of its file system; files on several mounts end in several).
bool Inference::DentryLayout(const std::set<uint64_t>& dentries) {
  for (uint64_t n = 4; n < 96; n += 4) {
    bool names = true;
    for (uint64_t d : dentries) names = names && Name(d, n).has_value();
    if (!names) continue;
    for (uint64_t dp = 4; dp < n - 4; dp += 4) {
      bool ok = true;
      for (uint64_t d : dentries) {
        auto chain = Chain(d, n, dp);
        ok = chain && chain->size() > 1 && Name(chain->back(), n) == "/";
        if (!ok) break;
      }
      if (ok) {
        l_.path.dentry_name_ptr = n;
        l_.path.dentry_name_len = n - 4;
        l_.path.dentry_parent = dp;
        l_.path.dentry_hash_pprev = dp - 4;
        return true;
      }
    }
  }
  return false;
}

// d and its ancestors up to a self-parent, every one named; nullopt if the chain breaks or
// runs past kMaxDepth.
std::optional<std::vector<uint64_t>> Inference::Chain(uint64_t d, uint64_t name_off,
                                                      uint64_t parent_off) {
  std::vector<uint64_t> chain;
  for (uint64_t at = d; chain.size() < kMaxDepth;) {
    const Words* w = Obj(at);
    if (!w || !Name(at, name_off)) return std::nullopt;
    chain.push_back(at);
    uint64_t parent = w->At(parent_off);
    if (parent == at) return chain;
    if (!Ptr(parent)) return std::nullopt;
    at = parent;
  }
  return std::nullopt;
}

// vfsmount.mnt_root at r, struct mount {... mnt_parent at po, mnt_mountpoint at po + 4 ...,
// mnt at mm}: each file's mnt_root is one of its dentry's ancestors (or itself: a bind mount's
// root is no file system root), and each file's mount leads through mnt_parent, by named
// mountpoints, to a mount that is its own parent and is mounted on its own root (the
// namespace's root mount).
bool Inference::MountLayout(const std::set<uint64_t>& files) {
  const PathLayout& p = l_.path;
  // A few mounts tell the offsets; a hostile guest could give every file its own.
  constexpr size_t kMaxMounts = 16;
  std::map<uint64_t, std::set<uint64_t>> mounts;  // vfsmount -> the dentries up its files' chains
  for (uint64_t f : files) {
    uint64_t vfsmount = Obj(f)->At(p.file_path_mnt);
    if (mounts.size() == kMaxMounts && !mounts.count(vfsmount)) continue;
    auto chain = Chain(Obj(f)->At(p.file_path_dentry), p.dentry_name_ptr, p.dentry_parent);
    if (!chain) return false;
    mounts[vfsmount].insert(chain->begin(), chain->end());
  }
  for (uint64_t r = 0; r < 16; r += 4) {
    bool roots = true;
    for (const auto& [vfsmount, dentries] : mounts) {
      const Words* v = Obj(vfsmount);
      roots = roots && v && dentries.count(v->At(r));
    }
    if (!roots) continue;
    for (uint64_t mm = 8; mm < 64; mm += 4) {
      for (uint64_t po = 0; po + 4 < mm; po += 4) {
        bool ok = true;
        for (auto it = mounts.begin(); ok && it != mounts.end(); ++it) {
          ok = ReachesRootMount(it->first - mm, r, mm, po);
        }
        if (ok) {
          l_.path.vfsmount_root = r;
          l_.path.mount_mnt = mm;
          l_.path.mount_parent = po;
          l_.path.mount_mountpoint = po + 4;
          return true;
        }
      }
    }
  }
  return false;
}

bool Inference::ReachesRootMount(uint64_t mount, uint64_t r, uint64_t mm, uint64_t po) {
  constexpr int kMaxMountDepth = 16;
  for (int depth = 0; depth < kMaxMountDepth; ++depth) {
    const Words* m = Obj(mount);
    if (!m) return false;
    uint64_t parent = m->At(po), mountpoint = m->At(po + 4);
    if (parent == mount) return mountpoint == m->At(mm + r);
    if (!Ptr(parent) || !Name(mountpoint, l_.path.dentry_name_ptr)) return false;
    mount = parent;
  }
  return false;
}

// i_mapping points into the inode; i_sb before it; i_ino the first non-zero non-pointer after.
bool Inference::InodeLayout(const std::set<uint64_t>& inodes) {
  for (uint64_t im = 8; im < 96; im += 4) {
    bool ok = true;
    for (uint64_t i : inodes) {
      const Words* w = Obj(i);
      ok = ok && w && w->At(im) > i && w->At(im) - i < 1024 && Ptr(w->At(im - 4));
    }
    if (!ok) continue;
    for (uint64_t ino = im + 4; ino < im + 24; ino += 4) {
      bool ino_ok = true;
      for (uint64_t i : inodes) {
        uint32_t x = Obj(i)->At(ino);
        ino_ok = ino_ok && x != 0 && x < in_.page_offset;
      }
      if (!ino_ok) continue;
      // s_dev: the first non-zero non-pointer of every super_block.
      for (uint64_t dev = 0; dev < 32; dev += 4) {
        bool dev_ok = true;
        for (uint64_t i : inodes) {
          const Words* sb = Obj(Obj(i)->At(im - 4));
          dev_ok = dev_ok && sb && sb->At(dev) != 0 && sb->At(dev) < in_.page_offset;
        }
        if (!dev_ok) continue;
        l_.inode_sb = im - 4;
        l_.inode_ino = ino;
        l_.inode_ino_size = 4;
        l_.sb_dev = dev;
        return true;
      }
    }
  }
  return false;
}

Result<InferredVmas> Inference::Run() {
  for (size_t s = 0; s < in_.samples.size(); ++s) {
    const VmaSample& sample = in_.samples[s];
    for (const VmaRange& r : sample.vmas) {
      auto w = ReadWords(mem_, r.vma, kVmaBytes);
      if (!w) return NotFoundError("a sampled VMA is unreadable");
      bool stack = r.start <= sample.start_stack && sample.start_stack < r.end;
      bool heap = sample.brk > sample.start_brk && r.start <= sample.start_brk &&
                  sample.brk <= r.end;
      vmas_.push_back({r.start, r.end, s, stack, heap, std::move(*w)});
    }
  }
  if (vmas_.empty()) return NotFoundError("no VMAs to infer from");
  auto flags = Flags();
  if (!flags) return NotFoundError("no vm_flags offset fits");
  l_.vm_flags = *flags;
  std::optional<uint64_t> file_off;
  std::set<uint64_t> files;
  for (uint64_t fo = *flags + 8; fo + 8 <= kVmaBytes && !file_off; fo += 4) {
    files.clear();
    std::vector<bool> has_file(in_.samples.size(), false);
    bool ok = true;
    for (const V& v : vmas_) {
      uint32_t x = v.w.At(fo);
      ok = ok && (x == 0 || Ptr(x)) && !(x != 0 && (v.stack || v.heap));
      if (x != 0) {
        files.insert(x);
        has_file[v.sample] = true;
      }
    }
    ok = ok && std::all_of(has_file.begin(), has_file.end(), [](bool b) { return b; });
    if (ok && FileLayout(files)) file_off = fo;
  }
  if (!file_off) return NotFoundError("no vm_file offset leads to files");
  l_.vm_file = *file_off;
  l_.vm_pgoff = *file_off - 4;
  l_.vm_private_data = *file_off + 4;
  size_t anon = 0, start_page = 0;
  for (const V& v : vmas_) {
    if (v.w.At(l_.vm_file) != 0 || v.stack) continue;
    ++anon;
    start_page += v.w.At(l_.vm_pgoff) == v.start >> 12;
  }
  if (anon > 0 && start_page * 2 < anon) return NotFoundError("vm_pgoff is not before vm_file");

  std::set<uint64_t> dentries, inodes;
  for (uint64_t f : files) {
    dentries.insert(Obj(f)->At(l_.path.file_path_dentry));
    inodes.insert(Obj(f)->At(l_.file_inode));
  }
  if (!DentryLayout(dentries)) return NotFoundError("no dentry name/parent offsets fit");
  if (!MountLayout(files)) return NotFoundError("no mount offsets lead to the root mount");
  if (!InodeLayout(inodes)) return NotFoundError("no inode/super_block offsets fit");

  // vm_ops (between vm_flags and vm_pgoff) of special mappings: .name is special_mapping_name.
  bool specials = false;
  if (in_.special_mapping_name != 0) {
    for (uint64_t op = *flags + 4; op < l_.vm_pgoff && !specials; op += 4) {
      for (const V& v : vmas_) {
        if (v.w.At(l_.vm_file) != 0 || !Ptr(v.w.At(op))) continue;
        const Words* ops = Obj(v.w.At(op));
        for (uint64_t n = 0; ops && n < 64 && !specials; n += 4) {
          if (ops->At(n) != in_.special_mapping_name) continue;
          const Words* sm = Obj(v.w.At(l_.vm_private_data));
          std::string name;
          // A string literal: any byte address in the kernel half.
          if (sm && sm->At(0) >= in_.page_offset) name = mem_.String(sm->At(0), 32).value_or("");
          if (name.size() > 2 && name.front() == '[') {
            l_.vm_ops = op;
            l_.vm_ops_name = n;
            l_.special_mapping_name = 0;
            l_.special_mapping_name_fn = in_.special_mapping_name;
            specials = true;
          }
        }
        if (specials) break;
      }
    }
  }
  if (!specials) l_.vm_ops = l_.vm_file;  // never a special mapping's: names left out

  InferredVmas out;
  // mm_struct.exe_file: each process's first file-backed VMA's file.
  for (uint64_t e = 0; e < 1024 && out.mm_exe_file == 0; e += 4) {
    bool ok = true;
    for (size_t s = 0; s < in_.samples.size() && ok; ++s) {
      uint64_t exe = 0;
      for (const V& v : vmas_) {
        if (v.sample == s && v.w.At(l_.vm_file) != 0) {
          exe = v.w.At(l_.vm_file);
          break;
        }
      }
      auto at = mem_.Pointer(in_.samples[s].mm + e);
      ok = exe != 0 && at && *at == exe;
    }
    if (ok) out.mm_exe_file = e;
  }
  l_.index = VmaIndex::kMapleTree;
  l_.mm_mt_root = in_.ranges.mm_mt_root;
  l_.maple = in_.ranges.maple;
  l_.vm_start = 0;
  l_.vm_end = 4;
  l_.vma_size = kVmaBytes;
  out.layout = l_;
  const PathLayout& p = l_.path;
  out.how.push_back(
      {"vma-offsets",
       fmt::format("vm_flags {} vm_pgoff {} vm_file {} vm_ops {} vm_private_data {}",
                   Hex(l_.vm_flags), Hex(l_.vm_pgoff), Hex(l_.vm_file),
                   specials ? Hex(l_.vm_ops) : "?", Hex(l_.vm_private_data)),
       fmt::format("inferred from {} VMAs of {} processes: VM_MAYREAD everywhere, VM_GROWSDOWN "
                   "only at start_stack; files whose dentry's d_inode is their f_inode; "
                   "special mappings' vm_ops name special_mapping_name",
                   vmas_.size(), in_.samples.size())});
  out.how.push_back(
      {"file-offsets",
       fmt::format("f_path {} f_inode {} d_parent {} d_name {} mnt_root {} mount.mnt {} "
                   "mnt_parent {} i_sb {} i_ino {} s_dev {} mm.exe_file {}",
                   Hex(p.file_path_mnt), Hex(l_.file_inode), Hex(p.dentry_parent),
                   Hex(p.dentry_name_len), Hex(p.vfsmount_root), Hex(p.mount_mnt),
                   Hex(p.mount_parent), Hex(l_.inode_sb), Hex(l_.inode_ino), Hex(l_.sb_dev),
                   out.mm_exe_file ? Hex(out.mm_exe_file) : "?"),
       "inferred: names of d_name.len printable bytes up to a self-parent \"/\"; mnt_root "
       "an ancestor of each file's dentry; every file's mount leads by mnt_parent and named "
       "mountpoints to the root mount, its own parent; i_mapping points into the inode"});
  return out;
}

}  // namespace

Result<InferredVmas> InferVmaLayout32(KernelMemory& mem, const VmaInferInput& in) {
  if (mem.pointer_size() != 4) return InvalidArgumentError("inference is for 32-bit kernels");
  Inference inference(mem, in);
  return inference.Run();
}

}  // namespace vmemfs::vmi::linux_os
