// Readers of the ground truth the test guests print about themselves (tools/guest writes it to
// <guest dir>/truth/; formats in README.md), shared by the unit tests that walk the guests'
// snapshots and the integration tests that mount them.
#ifndef VMEMFS_TESTS_TRUTH_GUEST_TRUTH_H_
#define VMEMFS_TESTS_TRUTH_GUEST_TRUTH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vmemfs::testing {

// Undoes ps.tsv's escapes (\\, \t, \n, \xNN).
std::string Unescape(const std::string& s);

// One line of truth/ps.tsv (tools/guest/pstruth.c), escapes undone; the fields as printed.
struct PsRow {
  int pid, ppid, tgid;
  std::string state, uid, gid, threads, comm, cmdline;  // real ids, thread count: decimal
};
// dir/truth/ps.tsv by pid.
std::map<int, PsRow> ReadTruthPs(const std::string& dir);

// One line of truth/tasks.tsv (pstruth tasks): a process's ids and threads.
struct TruthTask {
  std::string uid, gid;  // real effective saved fs, space-separated
  std::string threads;   // the Threads: count
  std::vector<int> tids;  // ascending
};
// dir/truth/tasks.tsv by pid; empty when the guest's image predates it.
std::map<int, TruthTask> ReadTruthTasks(const std::string& dir);

// The address of `symbol` in dir/truth/kallsyms.txt as kallsyms prints it ("" if absent).
std::string ReadTruthSymbolText(const std::string& dir, const std::string& symbol);
// The same as a number (0 if absent).
uint64_t ReadTruthSymbol(const std::string& dir, const std::string& symbol);

// The executable of a helper whose truth/maps/<pid>.txt this is: the file of its first mapping,
// as the guest's own maps names it (the helpers are static binaries: the image comes first).
std::string ExeFromTruthMaps(const std::string& maps_text);

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_TRUTH_GUEST_TRUTH_H_
