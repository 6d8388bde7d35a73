#define FUSE_USE_VERSION 312
#include "fs/fuse_server.h"

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

#include "fs/errno_map.h"

namespace vmemfs::fs {
namespace {

// Largest read request. libfuse splices a reply only if header + data + a page per piece fit
// one pipe, and a pipe holds at most /proc/sys/fs/pipe-max-size (1 MiB by default); otherwise
// it copies through a fresh buffer. 1 MiB requests ran at 1.2-1.4 GB/s, 512 KiB ones spliced at
// 4.1-4.8 GB/s here, and leave room for ~120 pieces (holes, kmem pages) per reply.
constexpr unsigned kMaxRead = 1 << 19;
// Zeros for holes are sent from here.
constexpr size_t kZerosSize = 1 << 20;
alignas(4096) const std::byte kZeros[kZerosSize] = {};

struct Server {
  Tree* tree;
  ServeOptions options;
  uid_t uid;
  gid_t gid;
  timespec mount_time;
};

Server& ServerOf(fuse_req_t req) { return *static_cast<Server*>(fuse_req_userdata(req)); }

struct stat AttrOf(const Server& server, const Node& node) {
  struct stat st = {};
  st.st_ino = node.ino;
  st.st_uid = server.uid;
  st.st_gid = server.gid;
  st.st_atim = st.st_mtim = st.st_ctim = server.mount_time;
  // Private to the mounting user: memory is a secret.
  if (node.is_dir()) {
    st.st_mode = S_IFDIR | 0500;
    st.st_nlink = 2;
  } else {
    st.st_mode = S_IFREG | (node.file->writable() ? 0600 : 0400);
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(node.file->Size());
    st.st_blocks = static_cast<blkcnt_t>((node.file->DataBytes() + 511) / 512);
  }
  st.st_blksize = 4096;
  return st;
}

// Exactly one reply on every path: handlers compute, then reply once.
void ReplyStatus(fuse_req_t req, const Status& s) { fuse_reply_err(req, ToErrno(s)); }

void OnInit(void* userdata, fuse_conn_info* conn) {
  // Let libfuse splice snapshot bytes from their file instead of copying them.
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  conn->max_read = kMaxRead;  // must equal the max_read mount option
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Server& server = ServerOf(req);
  auto node = server.tree->Lookup(parent, name);
  if (!node) {
    ReplyStatus(req, node.error());
    return;
  }
  fuse_entry_param e = {};
  e.ino = (*node)->ino;
  e.attr = AttrOf(server, **node);
  e.attr_timeout = e.entry_timeout = server.options.cache_timeout;
  // The kernel counts a lookup only if it got the reply.
  if (fuse_reply_entry(req, &e) != 0) server.tree->Forget(e.ino, 1);
}

void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  ServerOf(req).tree->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Tree& tree = *ServerOf(req).tree;
  for (size_t i = 0; i < count; ++i) tree.Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Server& server = ServerOf(req);
  const Node* node = server.tree->Get(ino);
  if (!node) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st = AttrOf(server, *node);
  fuse_reply_attr(req, &st, server.options.cache_timeout);
}

// A directory's listing is taken once per opendir and served in slices, so a listing of tens
// of thousands of symbols costs one pass.
constexpr Ino kUnmadeInoBase = 1ull << 62;

struct DirHandle {
  std::vector<DirEntry> entries;
};

void OnOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto entries = ServerOf(req).tree->List(ino);
  if (!entries) {
    ReplyStatus(req, entries.error());
    return;
  }
  auto* handle = new (std::nothrow) DirHandle{std::move(*entries)};
  if (!handle) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  fi->fh = reinterpret_cast<uint64_t>(handle);
  if (fuse_reply_open(req, fi) != 0) delete handle;
}

void OnReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OnReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Server& server = ServerOf(req);
  const Node* dir = server.tree->Get(ino);
  const auto& entries = reinterpret_cast<DirHandle*>(fi->fh)->entries;
  // Entry i (0 = ".", 1 = "..", then the listing) has offset i + 1.
  std::vector<char> buf(size);
  size_t used = 0;
  auto add = [&](const char* name, Ino entry_ino, bool is_dir, off_t index) {
    struct stat st = {};
    // readdir(3) hides entries whose inode is 0, so an entry not made yet gets a stand-in
    // number from a range the tree never reaches; stat() gives the real one.
    st.st_ino = entry_ino != 0 ? entry_ino : kUnmadeInoBase + index;
    st.st_mode = entry_ino == 0 ? 0 : is_dir ? S_IFDIR : S_IFREG;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, index + 1);
    if (need > size - used) return false;
    used += need;
    return true;
  };
  for (off_t i = std::max<off_t>(off, 0); i < off_t(entries.size()) + 2; ++i) {
    bool fits =
        i == 0   ? add(".", dir->ino, true, i)
        : i == 1 ? add("..", dir->parent, true, i)
                 : add(entries[i - 2].name.c_str(), entries[i - 2].ino, entries[i - 2].is_dir, i);
    if (!fits) break;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Server& server = ServerOf(req);
  const Node* node = server.tree->Get(ino);
  if (!node || node->is_dir()) {
    fuse_reply_err(req, node ? EISDIR : ENOENT);
    return;
  }
  bool wants_write = (fi->flags & O_ACCMODE) != O_RDONLY;
  if (wants_write && !node->file->writable()) {
    fuse_reply_err(req, server.options.writable ? EACCES : EROFS);
    return;
  }
  auto handle = node->file->Open();
  if (!handle) {
    ReplyStatus(req, handle.error());
    return;
  }
  fi->keep_cache = (*handle)->keep_cache;
  fi->direct_io = (*handle)->direct_io;
  fi->fh = reinterpret_cast<uint64_t>(handle->release());
  if (fuse_reply_open(req, fi) != 0) {
    delete reinterpret_cast<Handle*>(fi->fh);  // the open was interrupted
  }
}

Handle& HandleOf(fuse_file_info* fi) { return *reinterpret_cast<Handle*>(fi->fh); }

void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete &HandleOf(fi);
  fuse_reply_err(req, 0);
}

// Turns a plan into one fuse_bufvec and replies; file pieces are spliced when possible.
void ReplyPlan(fuse_req_t req, const ReadPlan& plan) {
  size_t count = 0;
  for (const ReadPiece& p : plan.pieces()) {
    count += p.kind == ReadPiece::Kind::kZeros ? (p.length + kZerosSize - 1) / kZerosSize : 1;
  }
  if (count == 0) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  size_t bytes = sizeof(fuse_bufvec) + (count - 1) * sizeof(fuse_buf);
  auto* vec = static_cast<fuse_bufvec*>(calloc(1, bytes));
  if (!vec) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  vec->count = count;
  size_t i = 0;
  for (const ReadPiece& p : plan.pieces()) {
    switch (p.kind) {
      case ReadPiece::Kind::kFile:
        vec->buf[i].size = p.length;
        vec->buf[i].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
        vec->buf[i].fd = p.fd;
        vec->buf[i].pos = static_cast<off_t>(p.file_offset);
        ++i;
        break;
      case ReadPiece::Kind::kMemory:
        vec->buf[i].size = p.length;
        vec->buf[i].mem = const_cast<void*>(p.data);
        ++i;
        break;
      case ReadPiece::Kind::kZeros:
        for (size_t left = p.length; left > 0; ++i) {
          size_t n = std::min(left, kZerosSize);
          vec->buf[i].size = n;
          vec->buf[i].mem = const_cast<std::byte*>(kZeros);
          left -= n;
        }
        break;
    }
  }
  fuse_reply_data(req, vec, fuse_buf_copy_flags{});
  free(vec);
}

void OnRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  try {
    ReadPlan plan;
    Status s = HandleOf(fi).Read(static_cast<uint64_t>(off), size, plan);
    if (!s.ok()) {
      ReplyStatus(req, s);
      return;
    }
    ReplyPlan(req, plan);
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  }
}

void OnWrite(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  auto n = HandleOf(fi).Write(static_cast<uint64_t>(off),
                              std::span(reinterpret_cast<const std::byte*>(buf), size));
  if (!n) {
    ReplyStatus(req, n.error());
    return;
  }
  fuse_reply_write(req, *n);
}

void OnLseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  auto pos = HandleOf(fi).Seek(static_cast<uint64_t>(off), whence);
  if (!pos) {
    fuse_reply_err(req, pos.error().code() == ErrorCode::kNotFound ? ENXIO : ToErrno(pos.error()));
    return;
  }
  fuse_reply_lseek(req, static_cast<off_t>(*pos));
}

// The tree is made by vmemfs, never by its users: creating, removing, renaming, linking and
// changing attributes are refused, EROFS in a read-only mount, EPERM with --write-memory (memory is
// writable then, names still are not). The mount itself is not "ro": `ctl` takes commands.
int NamespaceErrno(fuse_req_t req) { return ServerOf(req).options.writable ? EPERM : EROFS; }
void RefuseEntry(fuse_req_t req) { fuse_reply_err(req, NamespaceErrno(req)); }
void OnMknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { RefuseEntry(req); }
void OnMkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { RefuseEntry(req); }
void OnRemove(fuse_req_t req, fuse_ino_t, const char*) { RefuseEntry(req); }
void OnSymlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { RefuseEntry(req); }
void OnRename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
  RefuseEntry(req);
}
void OnLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { RefuseEntry(req); }
void OnCreate(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
  RefuseEntry(req);
}
void OnSetattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
  RefuseEntry(req);
}
void OnSetxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
  RefuseEntry(req);
}
void OnRemovexattr(fuse_req_t req, fuse_ino_t, const char*) { RefuseEntry(req); }
void OnFallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  RefuseEntry(req);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops = {};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.forget = OnForget;
  ops.forget_multi = OnForgetMulti;
  ops.getattr = OnGetattr;
  ops.opendir = OnOpendir;
  ops.readdir = OnReaddir;
  ops.releasedir = OnReleasedir;
  ops.open = OnOpen;
  ops.release = OnRelease;
  ops.read = OnRead;
  ops.write = OnWrite;
  ops.lseek = OnLseek;
  ops.mknod = OnMknod;
  ops.mkdir = OnMkdir;
  ops.unlink = OnRemove;
  ops.rmdir = OnRemove;
  ops.symlink = OnSymlink;
  ops.rename = OnRename;
  ops.link = OnLink;
  ops.create = OnCreate;
  ops.setattr = OnSetattr;
  ops.setxattr = OnSetxattr;
  ops.removexattr = OnRemovexattr;
  ops.fallocate = OnFallocate;
  return ops;
}

// Owns what fuse_session_new borrows, and undoes each setup step in reverse.
class Session {
 public:
  ~Session() {
    if (mounted_) fuse_session_unmount(se_);
    if (signals_) fuse_remove_signal_handlers(se_);
    if (se_) fuse_session_destroy(se_);
    fuse_opt_free_args(&args_);
  }
  Status Start(Server& server, const fuse_lowlevel_ops& ops) {
    const ServeOptions& o = server.options;
    fuse_opt_add_arg(&args_, "vmemfs");
    // default_permissions: the kernel enforces the owner-only modes even under allow_other.
    fuse_opt_add_arg(&args_, "-o");
    std::string base =
        "fsname=vmemfs,subtype=vmemfs,default_permissions,max_read=" + std::to_string(kMaxRead);
    fuse_opt_add_arg(&args_, base.c_str());
    for (const std::string& opt : o.fuse_options) {
      fuse_opt_add_arg(&args_, "-o");
      fuse_opt_add_arg(&args_, opt.c_str());
    }
    if (o.debug) fuse_opt_add_arg(&args_, "-d");
    se_ = fuse_session_new(&args_, &ops, sizeof ops, &server);
    if (!se_) return InvalidArgumentError("cannot start FUSE (bad -o option?)");
    if (fuse_set_signal_handlers(se_) != 0) return OsError("cannot set signal handlers");
    signals_ = true;
    if (fuse_session_mount(se_, o.mountpoint.c_str()) != 0) {
      return InvalidArgumentError("cannot mount on " + o.mountpoint);
    }
    mounted_ = true;
    return Status();
  }
  fuse_session* get() { return se_; }

 private:
  fuse_args args_ = FUSE_ARGS_INIT(0, nullptr);
  fuse_session* se_ = nullptr;
  bool signals_ = false;
  bool mounted_ = false;
};

}  // namespace

Status Serve(Tree& tree, const ServeOptions& options, const std::function<void()>& on_mounted) {
  Server server{&tree, options, getuid(), getgid(), {}};
  clock_gettime(CLOCK_REALTIME, &server.mount_time);
  static const fuse_lowlevel_ops ops = MakeOps();
  Session session;
  VMEMFS_TRY(session.Start(server, ops));
  if (on_mounted) on_mounted();
  int rc;
  if (options.single_threaded) {
    rc = fuse_session_loop(session.get());
  } else {
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(config, 1);
    fuse_loop_cfg_set_max_threads(config, options.max_threads);
    rc = fuse_session_loop_mt(session.get(), config);
    fuse_loop_cfg_destroy(config);
  }
  if (rc < 0) return OsError("FUSE loop failed", -rc);
  return Status();
}

}  // namespace vmemfs::fs
