#ifndef OXYDRA_CSYSTEMSHIMS_H
#define OXYDRA_CSYSTEMSHIMS_H

// Thin wrappers around Linux system calls that Swift cannot call directly (variadic `syscall`).
// Everything else stays in Swift.

#include <stdint.h>

/// Resolve flags of openat2(2) (linux/openat2.h), defined here so the header builds everywhere.
#define OXYDRA_RESOLVE_NO_XDEV 0x01
#define OXYDRA_RESOLVE_NO_MAGICLINKS 0x02
#define OXYDRA_RESOLVE_NO_SYMLINKS 0x04
#define OXYDRA_RESOLVE_BENEATH 0x08
#define OXYDRA_RESOLVE_IN_ROOT 0x10

/// O_PATH (Linux), which Glibc only declares under _GNU_SOURCE.
#define OXYDRA_O_PATH 0x200000

/// openat2(2). Returns a file descriptor, or -1 with errno set (ENOSYS where the kernel or the
/// platform has no openat2).
int oxydra_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/// Landlock (linux/landlock.h). The ABI version the kernel supports, or -1 with errno set
/// (ENOSYS: not built in; EOPNOTSUPP: disabled at boot).
int oxydra_landlock_abi(void);
/// A ruleset handling `handled_access_fs`; returns its file descriptor or -1.
int oxydra_landlock_create_ruleset(uint64_t handled_access_fs);
/// Allows `allowed_access` beneath the file or directory open at `parent_fd`; 0 or -1.
int oxydra_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed_access);
/// Sets no_new_privs and enforces the ruleset on the calling thread and its future children.
/// Call it before any other thread exists, or only the caller is confined. Returns 0 or -1.
int oxydra_landlock_restrict_self(int ruleset_fd);

/// How `oxydra_spawn` starts a child.
struct oxydra_spawn_options {
    /// Working directory, or NULL to keep the caller's.
    const char *cwd;
    int stdin_fd, stdout_fd, stderr_fd;
    /// A descriptor to hand to the child as descriptor 3, or -1.
    int pass_fd;
    /// Puts the child in a new process group of its own (so the group can be signalled as a whole).
    int new_process_group;
    /// Starts the child in a new session (no controlling terminal: the caller's Ctrl-C does not
    /// reach it), for processes that outlive their starter.
    int new_session;
    /// Signal the child gets when the calling thread's process exits (PR_SET_PDEATHSIG), or 0.
    int death_signal;
    /// The child stays a small reaper process (PR_SET_CHILD_SUBREAPER) that runs `path` as its own
    /// child: every process the command starts — also one that double-forks and calls setsid —
    /// becomes its descendant, and when the command exits (or the reaper gets SIGTERM) it kills
    /// all of them, then exits with the command's status (SIGTERM: killed by SIGKILL).
    int reap_descendants;
};

/// Starts `path` with `argv`/`envp`: standard streams from the given descriptors, every other
/// descriptor closed (except `pass_fd`, which becomes 3), signal mask cleared and every signal
/// reset to its default action. Returns the pid, or -1 with `*exec_errno` set when fork or exec
/// failed (the child is reaped).
int oxydra_spawn(const char *path, char *const argv[], char *const envp[], const struct oxydra_spawn_options *options,
                 int *exec_errno);

/// Sets RLIMIT_NPROC and RLIMIT_DATA (bytes) of the calling process; 0 leaves one unchanged.
/// Returns 0 or -1 with errno.
int oxydra_set_process_limits(long long processes, long long data_bytes);

/// pipe2(fds, O_CLOEXEC); 0 or -1.
int oxydra_pipe_cloexec(int fds[2]);

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits; -1 with errno on failure.
int oxydra_pidfd_open(int pid);

/// PR_SET_PDEATHSIG for the calling process; returns 0 or -1.
int oxydra_set_death_signal(int signal);
/// Names the calling thread (at most 15 bytes are kept), as `ps -L` and profilers show it.
int oxydra_set_thread_name(const char *name);

/// Restricts the calling process (and its future children) to the first `count` online CPUs.
int oxydra_limit_cpus(int count);

/// Makes SIGTERM, SIGINT and SIGHUP set a flag instead of ending the process (without SA_RESTART,
/// so a blocking waitpid or sleep returns EINTR). Returns 0 or -1.
int oxydra_watch_stop_signals(void);

/// Whether one of those signals arrived since `oxydra_watch_stop_signals`.
int oxydra_stop_requested(void);

#endif
