/*
 * Paddock's helper inside container sandboxes, bound into the container read-only (any image
 * works, even one without a shell or an init).
 *
 *   container-init            PID 1: reaps every orphan re-parented to it; exits on SIGTERM,
 *                             SIGINT or SIGHUP from outside the container only. The container
 *                             stays up between commands.
 *   container-init run PROG.. wraps one command of `runc exec`, so that a command in a
 *                             container ends like one in a process sandbox (bubblewrap runs
 *                             each in its own PID namespace): when PROG exits, or when the
 *                             `runc exec` that started it dies, every process PROG left
 *                             behind is killed too. The agent sends the same signal
 *                             (SIGRTMIN+2) when it kills a command, so a kill that comes
 *                             before the parent-death signal is armed works as well. It is their subreaper, so orphans come back
 *                             to it; signals it gets are passed on to PROG; PROG gets the
 *                             terminal's foreground when there is one. Exit code: PROG's, or
 *                             128 + the signal that ended it; 127 if PROG cannot be run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Sent to us when the `runc exec` above us dies, or by the agent killing the command (agent/process/process-tree.ts). */
#define PARENT_DIED (SIGRTMIN + 2)

static int pid_one(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig == SIGCHLD) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {
            }
        } else if ((sig == SIGTERM || sig == SIGINT || sig == SIGHUP) && info.si_pid == 0) {
            /* Only from outside the container (seen as pid 0): root inside cannot end it. */
            return 0;
        }
    }
}

/* Kills every child until there is none: killing one re-parents its children to us. */
static void kill_everything_left(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    for (;;) {
        FILE *f = fopen(path, "r");
        if (!f) return; /* no /proc: nothing more can be found */
        int pid, any = 0;
        while (fscanf(f, "%d", &pid) == 1) {
            kill(pid, SIGKILL);
            any = 1;
        }
        fclose(f);
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        if (!any && waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD) return;
        usleep(1000);
    }
}

static int run(char **argv) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_PDEATHSIG, PARENT_DIED);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &all, NULL);

    int tty = isatty(STDIN_FILENO);
    pid_t child = fork();
    if (child < 0) {
        perror("paddock: fork");
        return 127;
    }
    if (child == 0) {
        if (tty) {
            /* Its own process group in the foreground: ^C reaches it once, not through us too. */
            setpgid(0, 0);
            tcsetpgrp(STDIN_FILENO, getpid());
        }
        prctl(PR_SET_PDEATHSIG, 0);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "paddock: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }

    int code = 0;
    for (;;) {
        int sig = 0;
        if (sigwait(&all, &sig) != 0) continue;
        if (sig == PARENT_DIED) {
            kill(child, SIGKILL);
            kill_everything_left();
            return 137;
        }
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        int status;
        pid_t pid;
        int done = 0;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != child) continue;
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            done = 1;
        }
        if (done) break;
    }
    kill_everything_left();
    return code;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "run") == 0) return run(argv + 2);
    if (argc == 1) return pid_one();
    fprintf(stderr, "usage: container-init [run PROGRAM [ARGS...]]\n");
    return 2;
}
