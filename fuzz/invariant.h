// CHECK_INVARIANT(cond): what a fuzz target asserts about a parser's or walker's answer. Names
// the failed condition before aborting, so a crash report says which.
#ifndef VMEMFS_FUZZ_INVARIANT_H_
#define VMEMFS_FUZZ_INVARIANT_H_

#include <cstdio>
#include <cstdlib>

#define CHECK_INVARIANT(cond)                                \
  do {                                                       \
    if (!(cond)) {                                           \
      std::fprintf(stderr, "invariant failed: %s\n", #cond); \
      std::abort();                                          \
    }                                                        \
  } while (0)

#endif  // VMEMFS_FUZZ_INVARIANT_H_
