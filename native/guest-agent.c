/*
 * Paddock's guest agent: /init of the micro-VM sandboxes. It mounts what a Linux userland
 * needs, loads the modules listed in /modules/order (virtio, the console port, 9p), mounts
 * the host's share (virtio-9p, tag "workspace") at /mnt/share, configures eth0 when the host
 * gave the VM a network (paddock.net=ADDRESS/PREFIX,GATEWAY,DNS on the kernel's command
 * line), then serves the host
 * on the virtio-serial port "paddock": commands with pipes or a terminal, their input,
 * resizes, signals, output and exit codes, many at once. Nothing is run before the host
 * proves it knows this VM's secret (given in the initrd, read once and deleted). As PID 1 it
 * reaps every orphan.
 *
 * Frames, both ways: u32 length (big endian) of the payload, u8 type, u32 channel, payload.
 *   host -> guest  AUTH secret | EXEC flags u8, cols u16, rows u16, uid u32, gid u32,
 *                  argc u32, envc u32, then NUL-terminated cwd, argv..., env...
 *                  | STDIN data (empty: end of input) | RESIZE cols u16, rows u16 | SIGNAL u8
 *                  | CLAIM (bind /mnt/share/ws, where the host has put the sandbox's view, on
 *                  /workspace: a VM booted ahead of time for a warm pool gets its sandbox)
 *                  | POWEROFF (end every program, flush, power the VM off)
 *   guest -> host  READY kernel-release | CLAIMED | OUTPUT stream u8 (1 out, 2 err), data
 *                  | EXIT code i32 (128+N when killed by signal N), signal u8 | ERROR message
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/reboot.h>
#include <dirent.h>
#include <termios.h>
#include <unistd.h>

enum { T_AUTH = 1, T_EXEC = 2, T_STDIN = 3, T_RESIZE = 4, T_SIGNAL = 5, T_CLAIM = 6, T_POWEROFF = 7, T_READY = 0x10, T_OUTPUT = 0x11, T_EXIT = 0x12, T_ERROR = 0x13, T_CLAIMED = 0x14 };

#define PORT_NAME "paddock"
#define SECRET_FILE "/paddock/secret"
#define MAX_FRAME (1u << 20)
#define MAX_CHANNELS 256

/* Input the program has not read yet; past this, more is refused (the guest never blocks on it). */
#define MAX_PENDING_INPUT (4u << 20)

struct channel {
    uint32_t id;
    pid_t pid;
    int in, out, err; /* -1 when closed; a terminal's master is `out` and `in` */
    int pty;
    int exited, status;
    unsigned char *pending; /* input waiting for the program to read it */
    size_t pending_len;
    int close_after_pending;
};

static struct channel channels[MAX_CHANNELS];
static int port = -1;
static char secret[128];
static size_t secret_len;
static int authenticated;
static char mount_failure[160];

static void say(const char *what) {
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (fd >= 0) {
        (void)!write(fd, "paddock-guest: ", 15);
        (void)!write(fd, what, strlen(what));
        (void)!write(fd, "\n", 1);
        close(fd);
    }
}

static void put32(unsigned char *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        len -= (size_t)n;
    }
}

static void send_frame(int type, uint32_t channel, const void *a, size_t alen, const void *b, size_t blen) {
    unsigned char head[9];
    put32(head, (uint32_t)(alen + blen));
    head[4] = (unsigned char)type;
    put32(head + 5, channel);
    write_all(port, head, sizeof head);
    if (alen) write_all(port, a, alen);
    if (blen) write_all(port, b, blen);
}

static void kill_session(pid_t sid);

static void send_error(uint32_t channel, const char *message) { send_frame(T_ERROR, channel, message, strlen(message), NULL, 0); }

static struct channel *find(uint32_t id) {
    for (int i = 0; i < MAX_CHANNELS; i++)
        if (channels[i].pid > 0 && channels[i].id == id) return &channels[i];
    return NULL;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Sends what is left to read, then the exit; the channel is free again. */
static void finish(struct channel *c) {
    unsigned char buf[65536];
    int *fds[2] = {&c->out, &c->err};
    for (int s = 0; s < 2; s++) {
        if (*fds[s] < 0) continue;
        fcntl(*fds[s], F_SETFL, O_NONBLOCK);
        for (;;) {
            ssize_t n = read(*fds[s], buf, sizeof buf);
            if (n <= 0) break;
            unsigned char stream = (unsigned char)(s + 1);
            send_frame(T_OUTPUT, c->id, &stream, 1, buf, (size_t)n);
        }
    }
    free(c->pending);
    if (c->pty) c->in = -1; /* the same descriptor as out */
    close_fd(&c->in);
    close_fd(&c->out);
    close_fd(&c->err);
    unsigned char exit_frame[5];
    /* A program killed by a signal reports 128+N, as a shell (and the process runtime) does. */
    int code = WIFEXITED(c->status) ? WEXITSTATUS(c->status) : 128 + WTERMSIG(c->status);
    put32(exit_frame, (uint32_t)code);
    exit_frame[4] = WIFSIGNALED(c->status) ? (unsigned char)WTERMSIG(c->status) : 0;
    send_frame(T_EXIT, c->id, exit_frame, sizeof exit_frame, NULL, 0);
    memset(c, 0, sizeof *c);
}

static void child_exec(const char *cwd, char **argv, char **envp, uid_t uid, gid_t gid, int pty_slave, int in, int out, int err) {
    setsid();
    if (pty_slave >= 0) {
        ioctl(pty_slave, TIOCSCTTY, 0);
        in = out = err = pty_slave;
    }
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (int fd = 3; fd < 1024; fd++) close(fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        dprintf(2, "paddock: cannot become %u:%u: %s\n", uid, gid, strerror(errno));
        _exit(127);
    }
    if (chdir(cwd) != 0) {
        dprintf(2, "paddock: cannot change to %s: %s\n", cwd, strerror(errno));
        _exit(127);
    }
    for (char **e = envp; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) setenv("PATH", *e + 5, 1);
    execvpe(argv[0], argv, envp);
    dprintf(2, "paddock: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void start(uint32_t id, const unsigned char *p, size_t len) {
    if (len < 21 || find(id)) return send_error(id, "bad exec request");
    struct channel *c = NULL;
    for (int i = 0; i < MAX_CHANNELS && !c; i++)
        if (channels[i].pid == 0) c = &channels[i];
    if (!c) return send_error(id, "too many commands at once");
    int pty = p[0] & 1;
    struct winsize ws = {.ws_col = get16(p + 1), .ws_row = get16(p + 3)};
    uid_t uid = get32(p + 5);
    gid_t gid = get32(p + 9);
    uint32_t argc = get32(p + 13), envc = get32(p + 17);
    if (argc == 0 || argc > 4096 || envc > 4096) return send_error(id, "bad exec request");
    char **strings = calloc(argc + envc + 3, sizeof *strings);
    if (!strings) return send_error(id, "out of memory");
    const char *s = (const char *)p + 21, *end = (const char *)p + len;
    for (uint32_t i = 0; i < argc + envc + 1; i++) {
        const char *nul = memchr(s, 0, (size_t)(end - s));
        if (!nul) {
            free(strings);
            return send_error(id, "bad exec request");
        }
        strings[i] = (char *)s;
        s = nul + 1;
    }
    const char *cwd = strings[0];
    char **argv = strings + 1;
    char **envp = calloc(envc + 1, sizeof *envp);
    if (!envp) {
        free(strings);
        return send_error(id, "out of memory");
    }
    /* argv needs a NULL where env begins: env is copied out first. */
    for (uint32_t i = 0; i < envc; i++) envp[i] = strings[1 + argc + i];
    argv[argc] = NULL;

    int master = -1, slave = -1, pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (pty) {
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) || unlockpt(master) || (slave = open(ptsname(master), O_RDWR | O_NOCTTY)) < 0) {
            send_error(id, "cannot open a terminal");
            goto out;
        }
        ioctl(slave, TIOCSWINSZ, &ws);
    } else if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
        send_error(id, "cannot make pipes");
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        send_error(id, "cannot fork");
        goto out;
    }
    if (pid == 0) child_exec(cwd, argv, envp, uid, gid, slave, pin[0], pout[1], perr[1]);
    c->id = id;
    c->pid = pid;
    c->pty = pty;
    if (pty) {
        c->in = c->out = master;
        c->err = -1;
        fcntl(master, F_SETFL, O_NONBLOCK);
        master = -1;
    } else {
        c->in = pin[1];
        fcntl(c->in, F_SETFL, O_NONBLOCK);
        c->out = pout[0];
        c->err = perr[0];
        pin[1] = pout[0] = perr[0] = -1;
    }
out:
    if (master >= 0) close(master);
    if (slave >= 0) close(slave);
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0) close(pin[i]);
        if (pout[i] >= 0) close(pout[i]);
        if (perr[i] >= 0) close(perr[i]);
    }
    free(envp);
    free(strings);
}

/* Writes what the program will take now; the rest waits for POLLOUT (never blocks PID 1). */
static void flush_input(struct channel *c) {
    while (c->pending_len > 0 && c->in >= 0) {
        ssize_t n = write(c->in, c->pending, c->pending_len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) { /* the program closed its input: drop the rest */
            c->pending_len = 0;
            break;
        }
        memmove(c->pending, c->pending + n, c->pending_len - (size_t)n);
        c->pending_len -= (size_t)n;
    }
    if (c->pending_len == 0 && c->close_after_pending && !c->pty) close_fd(&c->in);
}

static void queue_input(struct channel *c, const unsigned char *p, size_t len) {
    if (c->pending_len + len > MAX_PENDING_INPUT) return say("a program is not reading its input: some was dropped");
    unsigned char *grown = realloc(c->pending, c->pending_len + len);
    if (!grown) return say("out of memory for a program's input: some was dropped");
    c->pending = grown;
    memcpy(c->pending + c->pending_len, p, len);
    c->pending_len += len;
    flush_input(c);
}

static void handle(int type, uint32_t id, const unsigned char *p, size_t len) {
    if (!authenticated) {
        if (type != T_AUTH) return;
        /* Constant-time: the host's word is only good if every byte matches. */
        unsigned char diff = (unsigned char)(len != secret_len);
        for (size_t i = 0; i < len && i < secret_len; i++) diff |= p[i] ^ (unsigned char)secret[i];
        if (diff || secret_len == 0) return send_error(0, "wrong secret");
        if (mount_failure[0]) return send_error(0, mount_failure);
        authenticated = 1;
        struct utsname u;
        uname(&u);
        send_frame(T_READY, 0, u.release, strlen(u.release), NULL, 0);
        return;
    }
    struct channel *c = find(id);
    switch (type) {
    case T_EXEC:
        start(id, p, len);
        break;
    case T_STDIN:
        if (!c || c->in < 0) break;
        if (len == 0) {
            if (c->pty) break;
            if (c->pending_len) c->close_after_pending = 1;
            else close_fd(&c->in);
            break;
        }
        queue_input(c, p, len);
        break;
    case T_RESIZE:
        if (c && c->pty && len >= 4) {
            struct winsize ws = {.ws_col = get16(p), .ws_row = get16(p + 2)};
            ioctl(c->out, TIOCSWINSZ, &ws);
        }
        break;
    case T_SIGNAL:
        if (c && len >= 1) {
            /* Right after the start the child may not have its own session yet: both. */
            if (p[0] == SIGKILL) kill_session(c->pid);
            kill(c->pid, p[0]);
        }
        break;
    case T_POWEROFF:
        /* A graceful end: programs get SIGTERM and a moment, then SIGKILL; the share is flushed. */
        kill(-1, SIGTERM);
        usleep(300000);
        kill(-1, SIGKILL);
        sync();
        umount2("/workspace", MNT_DETACH);
        umount2("/mnt/share", MNT_DETACH);
        reboot(RB_POWER_OFF);
        break;
    case T_CLAIM:
        if (mount("/mnt/share/ws", "/workspace", NULL, MS_BIND, NULL) != 0) {
            char line[128];
            snprintf(line, sizeof line, "cannot mount the workspace: %s", strerror(errno));
            send_error(0, line);
        } else {
            send_frame(T_CLAIMED, 0, NULL, 0, NULL, 0);
        }
        break;
    }
}

/* SIGKILLs every process of the command's session (a job put in its own group too). */
static void kill_session(pid_t sid) {
    kill(-sid, SIGKILL);
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 1) continue;
        if (getsid(pid) == sid) kill(pid, SIGKILL);
    }
    if (d) closedir(d);
}

static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < MAX_CHANNELS; i++) {
            struct channel *c = &channels[i];
            if (c->pid != pid) continue;
            /* A command ends with everything it started in its session, as under bubblewrap. */
            kill_session(pid);
            c->status = status;
            c->exited = 1;
            finish(c);
        }
    }
}

/* The port named "paddock" (no udev here to make /dev/virtio-ports/ links): its /dev node. */
static int open_port(void) {
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *e;
    int fd = -1;
    while (d && fd < 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], name[64] = {0};
        snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
        int nfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0) continue;
        ssize_t n = read(nfd, name, sizeof name - 1);
        close(nfd);
        if (n <= 0) continue;
        name[strcspn(name, "\n")] = 0;
        if (strcmp(name, PORT_NAME) != 0) continue;
        snprintf(path, sizeof path, "/dev/%s", e->d_name);
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (d) closedir(d);
    return fd;
}

/* Sets an IPv4 address (or netmask) of an interface. */
static int set_inet(int sock, unsigned long request, const char *ifname, in_addr_t addr) {
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = addr;
    return ioctl(sock, request, &ifr);
}

/*
 * The network the host gave this VM (QEMU's user-mode NAT): eth0 with the address, a default
 * route and /etc/resolv.conf from paddock.net=ADDRESS/PREFIX,GATEWAY,DNS. Without it, lo only.
 */
static void setup_network(void) {
    char cmdline[4096] = {0};
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
    close(fd);
    if (n <= 0) return;
    char *arg = strstr(cmdline, "paddock.net=");
    if (!arg) return;
    char address[32], gateway[32], dns[32];
    unsigned prefix;
    if (sscanf(arg + strlen("paddock.net="), "%31[0-9.]/%u,%31[0-9.],%31[0-9.]", address, &prefix, gateway, dns) != 4 || prefix > 32) {
        say("paddock.net= is not ADDRESS/PREFIX,GATEWAY,DNS: no network");
        return;
    }
    struct in_addr ip, gw;
    if (inet_pton(AF_INET, address, &ip) != 1 || inet_pton(AF_INET, gateway, &gw) != 1) {
        say("paddock.net= has an address that is not IPv4: no network");
        return;
    }
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "eth0");
    in_addr_t mask = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
    if (sock < 0 || set_inet(sock, SIOCSIFADDR, "eth0", ip.s_addr) != 0 || set_inet(sock, SIOCSIFNETMASK, "eth0", mask) != 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) {
        char line[160];
        snprintf(line, sizeof line, "cannot configure eth0: %s", strerror(errno));
        say(line);
        if (sock >= 0) close(sock);
        return;
    }
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ioctl(sock, SIOCSIFFLAGS, &ifr);
    struct rtentry route = {0};
    struct sockaddr_in *dst = (struct sockaddr_in *)&route.rt_dst, *via = (struct sockaddr_in *)&route.rt_gateway, *genmask = (struct sockaddr_in *)&route.rt_genmask;
    dst->sin_family = via->sin_family = genmask->sin_family = AF_INET;
    via->sin_addr = gw;
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    route.rt_dev = "eth0";
    if (ioctl(sock, SIOCADDRT, &route) != 0) {
        char line[160];
        snprintf(line, sizeof line, "cannot add the default route: %s", strerror(errno));
        say(line);
    }
    close(sock);
    FILE *resolv = fopen("/etc/resolv.conf", "w");
    if (resolv) {
        fprintf(resolv, "nameserver %s\n", dns);
        fclose(resolv);
    }
}

static void setup(void) {
    mkdir("/proc", 0755);
    mkdir("/sys", 0755);
    mkdir("/dev", 0755);
    mkdir("/tmp", 01777);
    mkdir("/run", 0755);
    mkdir("/workspace", 0755);
    mkdir("/mnt", 0755);
    mkdir("/mnt/share", 0755);
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    mkdir("/dev/pts", 0755);
    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
    unlink("/dev/ptmx");
    symlink("pts/ptmx", "/dev/ptmx");
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    sethostname("paddock-vm", 10);

    FILE *order = fopen("/modules/order", "r");
    char name[256];
    while (order && fgets(name, sizeof name, order)) {
        name[strcspn(name, "\n")] = 0;
        char path[512];
        snprintf(path, sizeof path, "/modules/%s", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)) {
            char line[600];
            snprintf(line, sizeof line, "cannot load %s: %s", name, strerror(errno));
            say(line);
        }
        if (fd >= 0) close(fd);
    }
    if (order) fclose(order);

    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq lo = {0};
    strcpy(lo.ifr_name, "lo");
    if (sock >= 0 && ioctl(sock, SIOCGIFFLAGS, &lo) == 0) {
        lo.ifr_flags |= IFF_UP;
        ioctl(sock, SIOCSIFFLAGS, &lo);
    }
    if (sock >= 0) close(sock);
    setup_network();

    if (mount("workspace", "/mnt/share", "9p", MS_NODEV | MS_NOSUID, "trans=virtio,version=9p2000.L,msize=262144") != 0) {
        snprintf(mount_failure, sizeof mount_failure, "cannot mount the host's share: %s", strerror(errno));
        say(mount_failure);
    }

    int fd = open(SECRET_FILE, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, secret, sizeof secret);
        secret_len = n > 0 ? (size_t)n : 0;
        close(fd);
    }
    unlink(SECRET_FILE);
}

int main(void) {
    if (getpid() != 1) {
        fprintf(stderr, "guest-agent: runs as /init of a Paddock VM only\n");
        return 2;
    }
    setup();
    for (int tries = 0; (port = open_port()) < 0; tries++) {
        if (tries == 0) say("waiting for the virtio-serial port " PORT_NAME);
        usleep(10000);
        if (tries > 3000) {
            say("no virtio-serial port: powering off");
            return 1;
        }
    }
    say("ready for the host");

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

    static unsigned char in[MAX_FRAME + 9];
    size_t have = 0;
    for (;;) {
        struct pollfd fds[2 + 3 * MAX_CHANNELS];
        struct channel *owner[2 + 3 * MAX_CHANNELS];
        int stream[2 + 3 * MAX_CHANNELS];
        int n = 0;
        fds[n++] = (struct pollfd){.fd = port, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        for (int i = 0; i < MAX_CHANNELS; i++) {
            struct channel *c = &channels[i];
            if (c->pid == 0) continue;
            if (c->out >= 0) owner[n] = c, stream[n] = 1, fds[n++] = (struct pollfd){.fd = c->out, .events = POLLIN | (c->pty && c->pending_len ? POLLOUT : 0)};
            if (!c->pty && c->in >= 0 && c->pending_len) owner[n] = c, stream[n] = 3, fds[n++] = (struct pollfd){.fd = c->in, .events = POLLOUT};
            if (c->err >= 0) owner[n] = c, stream[n] = 2, fds[n++] = (struct pollfd){.fd = c->err, .events = POLLIN};
        }
        if (poll(fds, (nfds_t)n, -1) < 0) continue;
        if (fds[1].revents) {
            struct signalfd_siginfo info;
            while (read(sfd, &info, sizeof info) > 0) {
            }
            reap();
            continue; /* channels may have been freed: poll again */
        }
        for (int i = 2; i < n; i++) {
            if (!fds[i].revents) continue;
            struct channel *c = owner[i];
            if (fds[i].revents & POLLOUT) flush_input(c);
            if (stream[i] == 3 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int *fd = stream[i] == 1 ? &c->out : &c->err;
            if (*fd != fds[i].fd) continue;
            unsigned char buf[65536];
            ssize_t got = read(*fd, buf, sizeof buf);
            if (got > 0) {
                unsigned char s = (unsigned char)stream[i];
                send_frame(T_OUTPUT, c->id, &s, 1, buf, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (c->pty) c->in = -1;
                close_fd(fd); /* end of output (a terminal's master says EIO) */
            }
        }
        if (fds[0].revents & POLLIN) {
            ssize_t got = read(port, in + have, sizeof in - have);
            if (got <= 0) {
                if (got < 0 && errno == EINTR) continue;
                usleep(10000); /* the host is not connected */
                continue;
            }
            have += (size_t)got;
            while (have >= 9) {
                uint32_t len = get32(in);
                if (len > MAX_FRAME) {
                    say("frame too large from the host: dropping the connection's buffer");
                    have = 0;
                    break;
                }
                if (have < 9 + len) break;
                handle(in[4], get32(in + 5), in + 9, len);
                memmove(in, in + 9 + len, have - 9 - len);
                have -= 9 + len;
            }
        } else if (fds[0].revents & (POLLHUP | POLLERR)) {
            usleep(10000);
        }
    }
}
