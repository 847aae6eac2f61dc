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
#endif
