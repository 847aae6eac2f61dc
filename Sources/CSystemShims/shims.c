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
#else
int oxydra_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    (void)dirfd; (void)path; (void)flags; (void)mode; (void)resolve;
    errno = ENOSYS;
    return -1;
}
#endif
