#define _GNU_SOURCE
#include "CSystemShims.h"

#include <errno.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>

struct oxydra_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

int oxydra_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
#ifdef SYS_openat2
    struct oxydra_open_how how = {flags, mode, resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
#else
    (void)dirfd; (void)path; (void)flags; (void)mode; (void)resolve;
    errno = ENOSYS;
    return -1;
#endif
}

#include <sys/prctl.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

static void oxydra_close_from(int first, int keep) {
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
#ifdef SYS_close_range
    if (keep < first) {
        if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0) return;
    } else {
        int ok = 1;
        if (keep > first && syscall(SYS_close_range, (unsigned)first, (unsigned)(keep - 1), 0) != 0) ok = 0;
        if (ok && syscall(SYS_close_range, (unsigned)(keep + 1), ~0U, 0) == 0) return;
    }
#endif
    for (int fd = first; fd < max; fd++) {
        if (fd != keep) close(fd);
    }
}

#include <sys/resource.h>
#include <sched.h>

int oxydra_set_process_limits(long long processes, long long data_bytes) {
    if (processes > 0) {
        struct rlimit limit = {(rlim_t)processes, (rlim_t)processes};
        if (setrlimit(RLIMIT_NPROC, &limit) != 0) return -1;
    }
    if (data_bytes > 0) {
        struct rlimit limit = {(rlim_t)data_bytes, (rlim_t)data_bytes};
        if (setrlimit(RLIMIT_DATA, &limit) != 0) return -1;
    }
    return 0;
}

/// Parses a decimal pid; async-signal-safe (no locale, no allocation).
static pid_t oxydra_parse_pid(const char **cursor, const char *end) {
    pid_t value = 0;
    while (*cursor < end && (**cursor < '0' || **cursor > '9')) (*cursor)++;
    if (*cursor >= end) return 0;
    while (*cursor < end && **cursor >= '0' && **cursor <= '9') value = value * 10 + (*(*cursor)++ - '0');
    return value;
}

/// Kills every child of this (single-threaded) process and reaps it, until none is left: killing
/// one makes its own children ours (we are their subreaper), so the loop takes the whole tree.
static void oxydra_kill_descendants(void) {
    char path[64] = "/proc/self/task/";
    int length = 16;
    char digits[16];
    int count = 0;
    for (pid_t self = getpid(); self > 0; self /= 10) digits[count++] = (char)('0' + self % 10);
    while (count > 0) path[length++] = digits[--count];
    const char *suffix = "/children";
    for (int i = 0; suffix[i]; i++) path[length++] = suffix[i];
    path[length] = 0;
    int status;
    for (int round = 0; round < 100000; round++) {
        char buffer[4096];
        ssize_t got = -1;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            got = read(fd, buffer, sizeof(buffer));
            close(fd);
        }
        int killed = 0;
        const char *cursor = buffer;
        const char *end = buffer + (got > 0 ? got : 0);
        for (pid_t child; (child = oxydra_parse_pid(&cursor, end)) > 0; killed++) kill(child, SIGKILL);
        if (killed > 0) {
            // Each kill ends in a reapable child (a killed process or a zombie that was listed).
            for (; killed > 0; killed--) {
                if (waitpid(-1, &status, 0) < 0 && errno == ECHILD) return;
            }
            continue;
        }
        pid_t reaped;
        while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {}
        if (reaped < 0 && errno == ECHILD) return;
        // Without /proc we cannot name the children: wait for them.
        if (got < 0 && waitpid(-1, &status, 0) < 0 && errno == ECHILD) return;
    }
}

/// The reaper side of `reap_descendants`: forks the command (which returns from this function
/// and goes on to exec), then waits for it and clears up everything it left. Never returns in
/// the reaper.
static void oxydra_reaper(int report_fd) {
    sigset_t waited, previous;
    sigemptyset(&waited);
    sigaddset(&waited, SIGCHLD);
    sigaddset(&waited, SIGTERM);
    sigprocmask(SIG_BLOCK, &waited, &previous);
    // Without a subreaper (or a second process) the command runs here itself: the group kill still
    // applies. Either way the command starts with the caller's signal mask.
    pid_t command = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? fork() : -1;
    if (command <= 0) {
        sigprocmask(SIG_SETMASK, &previous, NULL);
        return;
    }
    // The reaper keeps none of the command's descriptors: the output pipes must end with it.
    close(report_fd);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; fd++) dup2(null, fd);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    int status = 0;
    int terminated = 0;
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&waited, &info);
        if (sig == SIGTERM) {
            terminated = 1;
            break;
        }
        if (sig != SIGCHLD) continue;
        pid_t reaped;
        int done = 0;
        int child_status;
        while ((reaped = waitpid(-1, &child_status, WNOHANG)) > 0) {
            if (reaped == command) {
                status = child_status;
                done = 1;
            }
        }
        if (done) break;
    }
    oxydra_kill_descendants();
    if (terminated) {
        signal(SIGKILL, SIG_DFL);
        kill(getpid(), SIGKILL);
    }
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    int sig = WTERMSIG(status);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    signal(sig, SIG_DFL);
    kill(getpid(), sig);
    _exit(128 + sig);
}

int oxydra_spawn(const char *path, char *const argv[], char *const envp[], const struct oxydra_spawn_options *options,
                 int *exec_errno) {
    int report[2];
    *exec_errno = 0;
    if (pipe2(report, O_CLOEXEC) != 0) { *exec_errno = errno; return -1; }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *exec_errno = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        int failure = 0;
        if (options->death_signal > 0) {
            if (prctl(PR_SET_PDEATHSIG, options->death_signal, 0, 0, 0) != 0) failure = errno;
            if (getppid() != parent) _exit(127);
        }
        if (options->new_session) {
            if (setsid() < 0 && !failure) failure = errno;
        } else if (options->new_process_group && setpgid(0, 0) != 0 && !failure) {
            failure = errno;
        }
        sigset_t empty;
        sigemptyset(&empty);
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
        }
        sigprocmask(SIG_SETMASK, &empty, NULL);
        // Move every descriptor we need above 3 first, so dup2 below cannot clobber one of them.
        int keep = fcntl(report[1], F_DUPFD_CLOEXEC, 10);
        int in = fcntl(options->stdin_fd, F_DUPFD_CLOEXEC, 10);
        int out = fcntl(options->stdout_fd, F_DUPFD_CLOEXEC, 10);
        int err = fcntl(options->stderr_fd, F_DUPFD_CLOEXEC, 10);
        int pass = options->pass_fd >= 0 ? fcntl(options->pass_fd, F_DUPFD_CLOEXEC, 10) : -1;
        if (keep < 0 || in < 0 || out < 0 || err < 0 || (options->pass_fd >= 0 && pass < 0)) {
            if (!failure) failure = errno;
        }
        if (!failure && (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)) failure = errno;
        if (!failure && pass >= 0 && dup2(pass, 3) < 0) failure = errno;
        if (keep >= 0) oxydra_close_from(pass >= 0 ? 4 : 3, keep);
        if (!failure && options->cwd && chdir(options->cwd) != 0) failure = errno;
        if (!failure && options->reap_descendants) oxydra_reaper(keep);  // returns in the command
        if (!failure) {
            execve(path, argv, envp);
            failure = errno;
        }
        if (keep >= 0) {
            ssize_t ignored = write(keep, &failure, sizeof(failure));
            (void)ignored;
        }
        _exit(127);
    }
    close(report[1]);
    int child_errno = 0;
    ssize_t got;
    do {
        got = read(report[0], &child_errno, sizeof(child_errno));
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof(child_errno)) {
        *exec_errno = child_errno;
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

int oxydra_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int oxydra_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

int oxydra_set_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0); }

int oxydra_set_thread_name(const char *name) { return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }

int oxydra_limit_cpus(int count) {
    cpu_set_t online;
    CPU_ZERO(&online);
    if (sched_getaffinity(0, sizeof(online), &online) != 0) return -1;
    cpu_set_t chosen;
    CPU_ZERO(&chosen);
    int taken = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && taken < count; cpu++) {
        if (CPU_ISSET(cpu, &online)) {
            CPU_SET(cpu, &chosen);
            taken++;
        }
    }
    return sched_setaffinity(0, sizeof(chosen), &chosen);
}

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

struct oxydra_landlock_ruleset_attr {
    uint64_t handled_access_fs;
};

struct oxydra_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

int oxydra_landlock_abi(void) {
    return (int)syscall(SYS_landlock_create_ruleset, (void *)0, (size_t)0, (uint32_t)1);
}

int oxydra_landlock_create_ruleset(uint64_t handled_access_fs) {
    struct oxydra_landlock_ruleset_attr attr = {handled_access_fs};
    return (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), (uint32_t)0);
}

int oxydra_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed_access) {
    struct oxydra_landlock_path_beneath_attr attr = {allowed_access, parent_fd};
    return (int)syscall(SYS_landlock_add_rule, ruleset_fd, 1 /* LANDLOCK_RULE_PATH_BENEATH */, &attr, (uint32_t)0);
}

int oxydra_landlock_restrict_self(int ruleset_fd) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(SYS_landlock_restrict_self, ruleset_fd, (uint32_t)0);
}
#else
int oxydra_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    (void)dirfd; (void)path; (void)flags; (void)mode; (void)resolve;
    errno = ENOSYS;
    return -1;
}
#endif

#if !defined(__linux__)
int oxydra_spawn(const char *path, char *const argv[], char *const envp[], const struct oxydra_spawn_options *options,
                 int *exec_errno) {
    (void)path; (void)argv; (void)envp; (void)options;
    *exec_errno = ENOSYS;
    return -1;
}
int oxydra_set_process_limits(long long processes, long long data_bytes) {
    (void)processes; (void)data_bytes; errno = ENOSYS; return -1;
}
int oxydra_pipe_cloexec(int fds[2]) {
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}
int oxydra_pidfd_open(int pid) { (void)pid; errno = ENOSYS; return -1; }
int oxydra_set_death_signal(int signal) { (void)signal; errno = ENOSYS; return -1; }
int oxydra_set_thread_name(const char *name) { (void)name; errno = ENOSYS; return -1; }
int oxydra_limit_cpus(int count) { (void)count; errno = ENOSYS; return -1; }
#endif

#if !defined(__linux__)
int oxydra_landlock_abi(void) { errno = ENOSYS; return -1; }
int oxydra_landlock_create_ruleset(uint64_t handled_access_fs) { (void)handled_access_fs; errno = ENOSYS; return -1; }
int oxydra_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed_access) {
    (void)ruleset_fd; (void)parent_fd; (void)allowed_access; errno = ENOSYS; return -1;
}
int oxydra_landlock_restrict_self(int ruleset_fd) { (void)ruleset_fd; errno = ENOSYS; return -1; }
#endif

static volatile sig_atomic_t oxydra_stop_flag = 0;

static void oxydra_note_stop(int signal) {
    (void)signal;
    oxydra_stop_flag = 1;
}

int oxydra_watch_stop_signals(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = oxydra_note_stop;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGTERM, &action, NULL) != 0) return -1;
    if (sigaction(SIGINT, &action, NULL) != 0) return -1;
    return sigaction(SIGHUP, &action, NULL);
}

int oxydra_stop_requested(void) { return oxydra_stop_flag != 0; }
