// Shared-memory segments of the soft HCAs: /dev/shm/hfr-soft-hca-<slot>, one per open HCA,
// owned by the process holding an exclusive flock on it; peers map it by slot.
#define _GNU_SOURCE
#include "soft.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static void segment_path(uint32_t slot, char *path, size_t size) {
    snprintf(path, size, "/dev/shm/hfr-soft-hca-%u", slot);
}

// Takes `slot` if nobody alive holds it: creates or reuses the file, locks it, and checks that the
// locked file is still the one the name points to (its previous owner may have unlinked it).
static int try_slot(uint32_t slot, int *fd_out) {
    char path[64];
    segment_path(slot, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? 0 : -e;
    }
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
        close(fd);
        return 0;
    }
    *fd_out = fd;
    return 1;
}

// Removes the segments of HCAs whose process died without closing them (nobody holds the lock).
static void sweep_stale(void) {
    DIR *dir = opendir("/dev/shm");
    if (dir == NULL) return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        unsigned slot;
        char rest;
        if (sscanf(e->d_name, "hfr-soft-hca-%u%c", &slot, &rest) != 1) continue;
        char path[64];
        segment_path(slot, path, sizeof path);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat a, b;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino)
            unlink(path);
        close(fd);
    }
    closedir(dir);
}

int soft_segment_open(struct soft_hca *hca) {
    sweep_stale();
    uint32_t start = ((uint32_t)getpid() * 16u + (uint32_t)hca->index) % SOFT_MAX_SLOT;
    int fd = -1;
    uint32_t slot = 0;
    for (uint32_t i = 0; i < SOFT_MAX_SLOT && fd < 0; i++) {
        uint32_t s = (start + i) % SOFT_MAX_SLOT + 1;
        int r = try_slot(s, &fd);
        if (r < 0) {
            hfr_verbs_set_error(-r, "soft HCA %s: cannot create its segment in /dev/shm: %s", hca->device.name, strerror(-r));
            return -1;
        }
        if (r == 1) slot = s;
    }
    if (fd < 0) {
        hfr_verbs_set_error(EBUSY, "soft HCA %s: all %u soft HCA slots of this machine are in use", hca->device.name, SOFT_MAX_SLOT);
        return -1;
    }
    // Truncating to zero first discards a dead owner's contents without touching the pages.
    if (ftruncate(fd, 0) != 0 || ftruncate(fd, sizeof(struct soft_segment)) != 0) {
        int e = errno;
        close(fd);
        hfr_verbs_set_error(e, "soft HCA %s: cannot size its segment: %s", hca->device.name, strerror(e));
        return -1;
    }
    struct soft_segment *seg = mmap(NULL, sizeof *seg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (seg == MAP_FAILED) {
        int e = errno;
        close(fd);
        hfr_verbs_set_error(e, "soft HCA %s: cannot map its segment: %s", hca->device.name, strerror(e));
        return -1;
    }
    seg->version = SOFT_VERSION;
    seg->slot = slot;
    if (getrandom(&seg->incarnation, sizeof seg->incarnation, 0) != sizeof seg->incarnation)
        seg->incarnation = soft_now_ns() ^ (uint64_t)getpid();
    seg->probe_address = (uint64_t)(uintptr_t)&seg->probe;
    atomic_store(&seg->failed, 0);
    atomic_store(&seg->pid, (int32_t)getpid());
    __atomic_store_n(&seg->magic, SOFT_MAGIC, __ATOMIC_RELEASE);
    hca->fd = fd;
    hca->slot = slot;
    hca->seg = seg;
    hca->peer_count = 0;
    return 0;
}

void soft_segment_close(struct soft_hca *hca) {
    for (int i = 0; i < hca->peer_count; i++) {
        struct soft_peer *p = &hca->peers[i];
        if (p->fd >= 0) {
            munmap(p->seg, sizeof *p->seg);
            close(p->fd);
        }
    }
    hca->peer_count = 0;
    char path[64];
    segment_path(hca->slot, path, sizeof path);
    atomic_store(&hca->seg->pid, 0);
    munmap(hca->seg, sizeof *hca->seg);
    unlink(path);
    close(hca->fd);  // releases the lock
    hca->seg = NULL;
    hca->fd = -1;
    hca->slot = 0;
}

static int map_peer(struct soft_hca *hca, uint32_t slot, struct soft_peer *p) {
    char path[64];
    segment_path(slot, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        hfr_verbs_set_error(EHOSTUNREACH, "soft HCA %s: no soft HCA with LID %u is open on this machine (%s: %s)",
                            hca->device.name, slot, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct soft_segment)) {
        close(fd);
        hfr_verbs_set_error(EHOSTUNREACH, "soft HCA %s: the segment of the soft HCA with LID %u is not initialized",
                            hca->device.name, slot);
        return -1;
    }
    struct soft_segment *seg = mmap(NULL, sizeof *seg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (seg == MAP_FAILED) {
        int e = errno;
        close(fd);
        hfr_verbs_set_error(e, "soft HCA %s: cannot map the segment of LID %u: %s", hca->device.name, slot, strerror(e));
        return -1;
    }
    if (__atomic_load_n(&seg->magic, __ATOMIC_ACQUIRE) != SOFT_MAGIC || seg->version != SOFT_VERSION ||
        atomic_load(&seg->pid) == 0) {
        munmap(seg, sizeof *seg);
        close(fd);
        hfr_verbs_set_error(EHOSTUNREACH, "soft HCA %s: the soft HCA with LID %u is closed or of another version",
                            hca->device.name, slot);
        return -1;
    }
    p->slot = slot;
    p->fd = fd;
    p->inode = st.st_ino;
    p->seg = seg;
    return 0;
}

struct soft_peer *soft_peer_map(struct soft_hca *hca, uint32_t slot) {
    for (int i = 0; i < hca->peer_count; i++) {
        struct soft_peer *p = &hca->peers[i];
        if (p->slot != slot) continue;
        if (p->fd < 0) return p;
        // Still the file the name points to? A new owner of the slot creates a new one.
        char path[64];
        struct stat st;
        segment_path(slot, path, sizeof path);
        if (stat(path, &st) == 0 && st.st_ino == p->inode && atomic_load(&p->seg->pid) != 0) return p;
        struct soft_peer fresh;
        if (map_peer(hca, slot, &fresh) != 0) return NULL;
        // The old mapping stays: QPs connected through it keep reading a segment that says so.
        if (hca->peer_count == SOFT_MAX_PEERS) {
            munmap(fresh.seg, sizeof *fresh.seg);
            close(fresh.fd);
            hfr_verbs_set_error(ENOMEM, "soft HCA %s: more than %d peer HCAs", hca->device.name, SOFT_MAX_PEERS);
            return NULL;
        }
        p->slot = 0;  // retired: found no more by slot
        hca->peers[hca->peer_count] = fresh;
        return &hca->peers[hca->peer_count++];
    }
    if (hca->peer_count == SOFT_MAX_PEERS) {
        hfr_verbs_set_error(ENOMEM, "soft HCA %s: more than %d peer HCAs", hca->device.name, SOFT_MAX_PEERS);
        return NULL;
    }
    struct soft_peer *p = &hca->peers[hca->peer_count];
    if (slot == hca->slot) {
        p->slot = slot;
        p->fd = -1;
        p->inode = 0;
        p->seg = hca->seg;
    } else if (map_peer(hca, slot, p) != 0) {
        return NULL;
    }
    hca->peer_count++;
    return p;
}

// The owner holds an exclusive flock for as long as the HCA is open: if a shared one can be
// taken, the owner has closed it or exited.
int soft_peer_alive(const struct soft_peer *peer) {
    if (peer->fd < 0) return 1;
    if (atomic_load(&peer->seg->pid) == 0) return 0;
    if (flock(peer->fd, LOCK_SH | LOCK_NB) == 0) {
        flock(peer->fd, LOCK_UN);
        return 0;
    }
    return 1;
}

// process_vm_writev needs ptrace access to the peer; try one byte before connecting to it.
int soft_peer_probe(struct soft_hca *hca, const struct soft_peer *peer) {
    pid_t pid = atomic_load(&peer->seg->pid);
    if (pid == getpid()) return 0;
    uint8_t byte = 1;
    struct iovec local = {&byte, 1};
    struct iovec remote = {(void *)(uintptr_t)peer->seg->probe_address, 1};
    if (process_vm_writev(pid, &local, 1, &remote, 1, 0) == 1) return 0;
    int e = errno;
    if (e == EPERM || e == EACCES) {
        char scope[16] = "absent";
        FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
        if (f != NULL) {
            if (fgets(scope, sizeof scope, f) == NULL) strcpy(scope, "unreadable");
            scope[strcspn(scope, "\n")] = 0;
            fclose(f);
        }
        hfr_verbs_set_error(EPERM,
            "soft HCA %s: process_vm_writev into process %d (the soft HCA with LID %u) is not permitted: the soft "
            "verbs device needs ptrace access between the processes (same user, kernel.yama.ptrace_scope 0 or 1; it is %s)",
            hca->device.name, pid, peer->slot, scope);
        return -1;
    }
    hfr_verbs_set_error(EHOSTUNREACH, "soft HCA %s: process %d of the soft HCA with LID %u is gone (%s)",
                        hca->device.name, pid, peer->slot, strerror(e));
    return -1;
}
