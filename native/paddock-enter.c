/*
 * paddock-enter: the few privileged steps between the agent and bubblewrap, done in one
 * small exec instead of a chain of shell tools.
 *
 *   paddock-enter [--cgroup FILE]... [--bind SRC DST] [--user UID GID] -- PROGRAM [ARG]...
 *
 *   --cgroup FILE   write our pid to FILE (a cgroup.procs) first, so that everything that
 *                   follows, PROGRAM's children included, is inside the sandbox's cgroups
 *   --bind SRC DST  in a new private mount namespace, bind SRC (the sandbox's merged overlay,
 *                   which the user may not be able to reach) over DST (the workspace path)
 *   --user UID GID  drop every group and become UID:GID before running PROGRAM
 *
 * File descriptors other than 0, 1 and 2 are closed before PROGRAM runs.
 *
 * Every step is checked; on any failure it prints why and exits with 125, running nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
    fprintf(stderr, "paddock-enter: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
    exit(125);
}

static void usage(void) {
    fprintf(stderr, "usage: paddock-enter [--cgroup FILE]... [--bind SRC DST] [--user UID GID] -- PROGRAM [ARG]...\n");
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

static void bind_private(const char *src, const char *dst) {
    if (unshare(CLONE_NEWNS) != 0) die("cannot create a mount namespace", NULL);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("cannot make mounts private", NULL);
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0) die("cannot bind the sandbox view onto", dst);
}

static unsigned long parse_id(const char *s) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > 0xfffffffeUL) usage();
    return v;
}

int main(int argc, char **argv) {
    const char *bind_src = NULL, *bind_dst = NULL;
    long uid = -1, gid = -1;
    int i = 1;
    /* cgroups first, as they come: nothing may run outside them. */
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc) {
            join_cgroup(argv[++i]);
        } else if (strcmp(argv[i], "--bind") == 0 && i + 2 < argc) {
            bind_src = argv[++i];
            bind_dst = argv[++i];
        } else if (strcmp(argv[i], "--user") == 0 && i + 2 < argc) {
            uid = (long)parse_id(argv[++i]);
            gid = (long)parse_id(argv[++i]);
        } else {
            usage();
        }
    }
    if (i >= argc - 1) usage();
    char **program = &argv[i + 1];

    if (bind_src) bind_private(bind_src, bind_dst);
    if (uid >= 0) {
        if (setgroups(0, NULL) != 0) die("cannot drop supplementary groups", NULL);
        if (setgid((gid_t)gid) != 0) die("cannot set gid", NULL);
        if (setuid((uid_t)uid) != 0) die("cannot set uid", NULL);
        if (setuid(0) == 0) { errno = EPERM; die("privileges were not dropped", NULL); }
    }
    /* Nothing but stdio reaches the sandbox, whatever the agent itself inherited. */
    if (close_range(3, ~0U, 0) != 0) die("cannot close inherited file descriptors", NULL);
    execvp(program[0], program);
    die("cannot run", program[0]);
    return 125;
}
