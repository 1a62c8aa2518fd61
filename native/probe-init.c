/*
 * The /init of the probe guest that `system/check` boots to learn whether KVM and TCG really
 * run a Linux guest. It prints a marker with the guest kernel's release on the console, then
 * powers the VM off. Built static so the initramfs needs nothing else.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void) {
    int fd = 1;
    if (fcntl(fd, F_GETFD) < 0) fd = open("/dev/console", O_WRONLY | O_NOCTTY);

    struct utsname u;
    char line[256];
    int n = snprintf(line, sizeof line, "\nPADDOCK-PROBE-OK %s\n", uname(&u) == 0 ? u.release : "unknown");
    if (fd >= 0 && n > 0) (void)!write(fd, line, (size_t)n);

    sync();
    reboot(RB_POWER_OFF);
    for (;;) pause();
}
