// The baseline of the filesystem benchmarks: the least a FUSE server can do to serve a file.
//
//   fuse_baseline FILE [-f] [-s] [-o OPTIONS] MOUNTPOINT
//
// MOUNTPOINT/mem is FILE, read-only. FILE is mapped once and every READ is answered with
// fuse_reply_buf() pointing into the mapping, so the only copy in user space is the kernel
// copying the mapping into the reply. No parsing, no address translation, no per-request
// allocation. vmemfs's pmem cannot be faster than this on the same kernel and FUSE options;
// fs_bench.sh reports vmemfs as a ratio against it.
//
// FUSE settings mirror vmemfs's for a snapshot: keep_cache on, direct_io off, clone_fd on,
// libfuse's default of 10 worker threads. Fairness does not rest on them: the benchmark readers
// use O_DIRECT, which sends every read to the daemon whatever a server sets at open, and mount
// each server afresh, so its page cache starts empty (see README.md). Options for
// experiments: -o mem_direct_io (FOPEN_DIRECT_IO), -o mem_no_keep_cache.
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { kRootIno = FUSE_ROOT_ID, kMemIno = 2 };
static const char kMemName[] = "mem";
// The file never changes while mounted, so the kernel may keep names and sizes forever.
static const double kForever = 86400.0;

struct Options {
  int direct_io;
  int no_keep_cache;
};

static struct {
  const char* data;
  off_t size;
  struct Options opts;
} g;

static void FillAttr(fuse_ino_t ino, struct stat* st) {
  memset(st, 0, sizeof(*st));
  st->st_ino = ino;
  st->st_uid = getuid();
  st->st_gid = getgid();
  if (ino == kRootIno) {
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = g.size;
  }
}

static void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != kRootIno || strcmp(name, kMemName) != 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  e.ino = kMemIno;
  e.attr_timeout = kForever;
  e.entry_timeout = kForever;
  FillAttr(kMemIno, &e.attr);
  fuse_reply_entry(req, &e);
}

static void OpGetattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  (void)fi;
  if (ino != kRootIno && ino != kMemIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st;
  FillAttr(ino, &st);
  fuse_reply_attr(req, &st, kForever);
}

// Adds one entry if it fits; returns the new buffer size or 0 when full.
static size_t AddDirent(fuse_req_t req, char* buf, size_t used, size_t cap, const char* name,
                        fuse_ino_t ino, off_t next) {
  struct stat st;
  FillAttr(ino, &st);
  size_t n = fuse_add_direntry(req, buf + used, cap - used, name, &st, next);
  return n > cap - used ? 0 : used + n;
}

static void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info* fi) {
  (void)fi;
  if (ino != kRootIno) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  static const char* const kNames[] = {".", "..", kMemName};
  static const fuse_ino_t kInos[] = {kRootIno, kRootIno, kMemIno};
  char buf[512];
  size_t cap = size < sizeof(buf) ? size : sizeof(buf);
  size_t used = 0;
  for (off_t i = off; i < 3; ++i) {
    size_t next = AddDirent(req, buf, used, cap, kNames[i], kInos[i], i + 1);
    if (next == 0) break;
    used = next;
  }
  fuse_reply_buf(req, buf, used);
}

static void OpOpen(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  if (ino != kMemIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if ((fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EROFS);
    return;
  }
  fi->direct_io = g.opts.direct_io;
  fi->keep_cache = !g.opts.no_keep_cache;
  fuse_reply_open(req, fi);
}

static void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info* fi) {
  (void)ino;
  (void)fi;
  if (off >= g.size) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  size_t left = (size_t)(g.size - off);
  fuse_reply_buf(req, g.data + off, size < left ? size : left);
}

static const struct fuse_lowlevel_ops kOps = {
    .lookup = OpLookup,
    .getattr = OpGetattr,
    .open = OpOpen,
    .read = OpRead,
    .readdir = OpReaddir,
};

static const struct fuse_opt kOptSpec[] = {
    {"mem_direct_io", offsetof(struct Options, direct_io), 1},
    {"mem_no_keep_cache", offsetof(struct Options, no_keep_cache), 1},
    FUSE_OPT_END,
};

static int MapFile(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
    fprintf(stderr, "fuse_baseline: cannot open %s (or it is empty): %s\n", path, strerror(errno));
    return -1;
  }
  void* p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    fprintf(stderr, "fuse_baseline: mmap %s: %s\n", path, strerror(errno));
    return -1;
  }
  g.data = p;
  g.size = st.st_size;
  return 0;
}

static int Serve(struct fuse_session* se, const struct fuse_cmdline_opts* opts) {
  if (opts->singlethread) return fuse_session_loop(se);
  struct fuse_loop_config* config = fuse_loop_cfg_create();
  // vmemfs always clones the fd per thread; so does the baseline.
  fuse_loop_cfg_set_clone_fd(config, 1);
  fuse_loop_cfg_set_max_threads(config, opts->max_threads);
  int rc = fuse_session_loop_mt(se, config);
  fuse_loop_cfg_destroy(config);
  return rc;
}

static int Run(struct fuse_args* args, const struct fuse_cmdline_opts* opts) {
  struct fuse_session* se = fuse_session_new(args, &kOps, sizeof(kOps), NULL);
  if (se == NULL) return 1;
  int rc = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, opts->mountpoint) == 0) {
      fuse_daemonize(opts->foreground);
      rc = Serve(se, opts) == 0 ? 0 : 1;
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  return rc;
}

int main(int argc, char* argv[]) {
  if (argc < 3 || argv[1][0] == '-') {
    fprintf(stderr, "usage: %s FILE [-f] [-s] [-o OPTIONS] MOUNTPOINT\n", argv[0]);
    return 2;
  }
  if (MapFile(argv[1]) != 0) return 1;
  // FILE is ours; the rest is libfuse's command line.
  argv[1] = argv[0];
  struct fuse_args args = FUSE_ARGS_INIT(argc - 1, argv + 1);
  struct fuse_cmdline_opts opts;
  if (fuse_opt_parse(&args, &g.opts, kOptSpec, NULL) != 0 ||
      fuse_parse_cmdline(&args, &opts) != 0 || opts.mountpoint == NULL) {
    fprintf(stderr, "fuse_baseline: bad command line (need a MOUNTPOINT)\n");
    return 2;
  }
  int rc = Run(&args, &opts);
  free(opts.mountpoint);
  fuse_opt_free_args(&args);
  return rc;
}
