/*
 * paddock-enter: the few privileged steps between the agent and bubblewrap, done in one
 * small exec instead of a chain of shell tools.
 *
 *   paddock-enter [--cgroup FILE]... [--bind SRC DST DEV:INO] [--user UID GID] [--keep-fds N] -- PROGRAM [ARG]...
 *
 *   --cgroup FILE   write our pid to FILE (a cgroup.procs) first, so that everything that
 *                   follows, PROGRAM's children included, is inside the sandbox's cgroups
 *   --bind SRC DST DEV:INO
 *                   in a new private mount namespace, bind SRC (the sandbox's merged overlay,
 *                   which must be a mount point) over DST (the workspace). DST is opened
 *                   without following any symlink and must be the directory DEV:INO that the
 *                   agent checked, so a path swapped in the meantime cannot redirect the bind.
 *   --user UID GID  drop every group and become UID:GID before running PROGRAM
 *   --keep-fds N    leave descriptors 3 .. 3+N-1 open for PROGRAM (a VM's files: QEMU gets
 *                   them as descriptors because the state dir is closed to the sandbox's owner)
 *
 * PROGRAM must be an absolute path; it is opened before the bind, so the bind cannot replace
 * it. File descriptors other than 0, 1 and 2 (and those --keep-fds names) are closed before it runs. Every step is
 * checked; on any failure it prints why on stderr and exits with 125, running nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what, const char *arg) {
    fprintf(stderr, "paddock-enter: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
    exit(125);
}

static void usage(void) {
    fprintf(stderr, "usage: paddock-enter [--cgroup FILE]... [--bind SRC DST DEV:INO] [--user UID GID] [--keep-fds N] -- /PROGRAM [ARG]...\n");
    exit(125);
}

static void join_cgroup(const char *procs) {
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("cannot open", procs);
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (write(fd, pid, (size_t)n) != n) die("cannot join cgroup", procs);
    close(fd);
}

static int open_beneath_no_symlinks(const char *path) {
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
}

static void bind_private(const char *src, const char *dst, const char *expected) {
    /* SRC must be a mounted overlay: a stopped sandbox's empty directory is refused. */
    struct stat s, parent;
    char up[4096];
    if (snprintf(up, sizeof up, "%s/..", src) >= (int)sizeof up) { errno = ENAMETOOLONG; die("path too long", src); }
    if (stat(src, &s) != 0 || stat(up, &parent) != 0) die("cannot stat", src);
    if (s.st_dev == parent.st_dev) { errno = ENOENT; die("the sandbox view is not mounted at", src); }

    if (unshare(CLONE_NEWNS) != 0) die("cannot create a mount namespace", NULL);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("cannot make mounts private", NULL);

    /* Opened in the new namespace (a mount target must be in ours), without following symlinks. */
    int fd = open_beneath_no_symlinks(dst);
    if (fd < 0) die("cannot open the workspace (without following symlinks)", dst);
    struct stat d;
    if (fstat(fd, &d) != 0) die("cannot stat", dst);
    char actual[64];
    snprintf(actual, sizeof actual, "%llu:%llu", (unsigned long long)d.st_dev, (unsigned long long)d.st_ino);
    if (strcmp(actual, expected) != 0) { errno = ESTALE; die("the workspace is not the directory that was checked", dst); }

    char target[64];
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) != 0) die("cannot bind the sandbox view onto", dst);
    close(fd);

    /* Every sandbox's mounts live under the state dir's sandboxes folder (SRC is
       sandboxes/ID/merged), which the agent makes a mount of its own: detached here, this
       namespace keeps no copy of another sandbox's overlay or container root, whose upper
       dir would otherwise stay mounted here after the host unmounts it (and be mounted twice
       when that sandbox starts again). Not a mount point (an older agent's layout): nothing. */
    char root[4096];
    if (snprintf(root, sizeof root, "%s", src) >= (int)sizeof root) { errno = ENAMETOOLONG; die("path too long", src); }
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(root, '/');
        if (!slash || slash == root) return;
        *slash = 0;
    }
    if (umount2(root, MNT_DETACH) != 0 && errno != EINVAL) die("cannot detach the other sandboxes' mounts under", root);
}

static unsigned long parse_id(const char *s) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > 0xfffffffeUL) usage();
    return v;
}

int main(int argc, char **argv) {
    const char *bind_src = NULL, *bind_dst = NULL, *bind_id = NULL;
    long uid = -1, gid = -1;
    int keep = 0;
    int i = 1;
    /* cgroups first, as they come: nothing may run outside them. */
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc) {
            join_cgroup(argv[++i]);
        } else if (strcmp(argv[i], "--bind") == 0 && i + 3 < argc) {
            bind_src = argv[++i];
            bind_dst = argv[++i];
            bind_id = argv[++i];
        } else if (strcmp(argv[i], "--user") == 0 && i + 2 < argc) {
            uid = (long)parse_id(argv[++i]);
            gid = (long)parse_id(argv[++i]);
        } else if (strcmp(argv[i], "--keep-fds") == 0 && i + 1 < argc) {
            keep = (int)parse_id(argv[++i]);
            if (keep > 16) usage();
        } else {
            usage();
        }
    }
    if (i >= argc - 1 || argv[i + 1][0] != '/') usage();
    char **program = &argv[i + 1];
    int exe = open(program[0], O_PATH | O_CLOEXEC);
    if (exe < 0) die("cannot open", program[0]);

    if (bind_src) bind_private(bind_src, bind_dst, bind_id);
    if (uid >= 0) {
        if (setgroups(0, NULL) != 0) die("cannot drop supplementary groups", NULL);
        if (setgid((gid_t)gid) != 0) die("cannot set gid", NULL);
        if (setuid((uid_t)uid) != 0) die("cannot set uid", NULL);
        if (setuid(0) == 0) { errno = EPERM; die("privileges were not dropped", NULL); }
    }
    /* Nothing but stdio, the kept ones (and the program itself, closed on exec) reaches the sandbox. */
    int slot = 3 + keep;
    if (exe != slot) {
        if (exe < slot) { errno = EBADF; die("the program's descriptor is among the kept ones", NULL); }
        if (dup2(exe, slot) < 0) die("cannot move a descriptor", NULL);
    }
    if (close_range((unsigned)slot + 1, ~0U, 0) != 0) die("cannot close inherited file descriptors", NULL);
    if (fcntl(slot, F_SETFD, FD_CLOEXEC) != 0) die("cannot mark a descriptor close-on-exec", NULL);
    syscall(SYS_execveat, slot, "", program, environ, AT_EMPTY_PATH);
    die("cannot run", program[0]);
    return 125;
}
