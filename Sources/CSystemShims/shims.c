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

int oxydra_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *cwd,
                          int stdin_fd, int stdout_fd, int stderr_fd, int *exec_errno) {
    int report[2];
    *exec_errno = 0;
    if (pipe2(report, O_CLOEXEC) != 0) { *exec_errno = errno; return -1; }
    pid_t pid = fork();
    if (pid < 0) {
        *exec_errno = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        sigset_t empty;
        sigemptyset(&empty);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        setsid();
        int failure = 0;
        if (dup2(stdin_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0) failure = errno;
        int keep = report[1];
        if (keep <= 2) { keep = fcntl(keep, F_DUPFD_CLOEXEC, 3); }
        oxydra_close_from(3, keep);
        if (!failure && cwd && chdir(cwd) != 0) failure = errno;
        if (!failure) {
            execve(path, argv, envp);
            failure = errno;
        }
        ssize_t ignored = write(keep, &failure, sizeof(failure));
        (void)ignored;
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
int oxydra_landlock_abi(void) { errno = ENOSYS; return -1; }
int oxydra_landlock_create_ruleset(uint64_t handled_access_fs) { (void)handled_access_fs; errno = ENOSYS; return -1; }
int oxydra_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed_access) {
    (void)ruleset_fd; (void)parent_fd; (void)allowed_access; errno = ENOSYS; return -1;
}
int oxydra_landlock_restrict_self(int ruleset_fd) { (void)ruleset_fd; errno = ENOSYS; return -1; }
int oxydra_spawn_detached(const char *path, char *const argv[], char *const envp[], const char *cwd,
                          int stdin_fd, int stdout_fd, int stderr_fd, int *exec_errno) {
    (void)path; (void)argv; (void)envp; (void)cwd; (void)stdin_fd; (void)stdout_fd; (void)stderr_fd;
    *exec_errno = ENOSYS;
    return -1;
}
#endif
