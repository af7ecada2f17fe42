// HFR_IB_SOFT_PIN=1: the soft device keeps to the pages a region had when it was registered, as
// a real HCA does, for tests. An HCA pins a region's pages and goes on reading and writing those
// physical frames after the process unmaps them and maps new pages at the same address; the soft
// device writes through the address instead, so it would hide a registration kept past the life
// of its memory. With pinning emulated, a registration records the frame under its first page
// (from /proc/self/pagemap, which shows frames to CAP_SYS_ADMIN only: elsewhere nothing is
// recorded and nothing checked), and a write whose destination or source region has another
// frame there now moves nothing, yet completes successfully: the HCA would have written into, or
// read from, the old frames.
#define _GNU_SOURCE
#include "soft.h"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int soft_pin;

// The frame under `addr` in process `pid` (0: this one), or 0 when the page is not present or
// frames are not shown to this process.
uint64_t soft_page_frame(pid_t pid, uint64_t addr) {
    char path[48];
    if (pid == 0) snprintf(path, sizeof path, "/proc/self/pagemap");
    else snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint64_t entry = 0;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    ssize_t got = pread(fd, &entry, sizeof entry, (off_t)(addr / page * sizeof entry));
    close(fd);
    if (got != (ssize_t)sizeof entry || !(entry >> 63)) return 0;
    return entry & ((1ull << 55) - 1);
}

// Does the region in `slot` (of process `pid`) have another frame under its first page than
// when it was registered?
int soft_frame_moved(pid_t pid, const struct soft_mr_slot *slot) {
    return slot->frame != 0 && soft_page_frame(pid, slot->addr) != slot->frame;
}
