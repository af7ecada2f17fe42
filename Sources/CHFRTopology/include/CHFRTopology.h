#ifndef CHFRTOPOLOGY_H
#define CHFRTOPOLOGY_H
// C shims for HFRTopology: only what Swift cannot call conveniently (hwloc's inline helpers,
// unions and bitmap iteration; the CPU_SET macros; get_mempolicy's and mbind's node masks).
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <hwloc.h>

// MARK: hwloc

/// hwloc_topology_init, hwloc_topology_set_io_types_filter(HWLOC_TYPE_FILTER_KEEP_ALL) so that
/// PCI devices, bridges and OS devices (network interfaces, HCAs) are kept,
/// hwloc_topology_set_components(BLACKLIST) of the GPU plugins (gl, opencl, cuda, nvml, rsmi,
/// levelzero) so that loading never starts a GPU runtime, then
/// hwloc_topology_set_xml when `xml_path` is not NULL (otherwise this machine), and
/// hwloc_topology_load. Returns 0, or -1 with errno set and `*failed_call` naming the call.
int hfr_topology_load(const char *xml_path, hwloc_topology_t *out, const char **failed_call);

/// HWLOC_VERSION, the release of hwloc these shims were compiled against (e.g. "2.9.0").
const char *hfr_hwloc_version(void);

/// hwloc_bitmap_foreach_begin/end: writes up to `cap` set indexes of `set` to `out` in
/// increasing order; returns how many are set (may exceed cap), or -1 for an infinite set.
int hfr_bitmap_indexes(hwloc_const_bitmap_t set, int *out, int cap);

/// hwloc_get_nbobjs_by_type (inline in hwloc.h).
int hfr_object_count(hwloc_topology_t topology, hwloc_obj_type_t type);
/// hwloc_get_obj_by_type (inline in hwloc.h).
hwloc_obj_t hfr_object(hwloc_topology_t topology, hwloc_obj_type_t type, unsigned index);
/// hwloc_get_non_io_ancestor_obj (inline in hwloc.h): the first CPU-side ancestor of an I/O object.
hwloc_obj_t hfr_non_io_ancestor(hwloc_topology_t topology, hwloc_obj_t obj);

/// obj->attr->osdev.type (a union member): HWLOC_OBJ_OSDEV_NETWORK, _OPENFABRICS, ...
int hfr_osdev_type(hwloc_obj_t obj);
/// obj->attr->numanode.local_memory, in bytes.
uint64_t hfr_numa_local_memory(hwloc_obj_t obj);
/// obj->attr->pcidev.class_id (e.g. 0x0207 InfiniBand, 0x0302 3D controller).
unsigned hfr_pci_class(hwloc_obj_t obj);
/// obj->attr->pcidev as "dddd:bb:dd.f" into `buf`.
void hfr_pci_busid(hwloc_obj_t obj, char *buf, size_t len);

// MARK: affinity

/// pthread_setaffinity_np(pthread_self()) with the `n` CPUs of `cpus` (a CPU_ALLOC set sized for
/// the largest index). Returns 0 or the error number.
int hfr_set_thread_affinity(const int *cpus, int n);
/// sched_getaffinity(2) of `tid` (0: the calling thread; a pid: that process's main thread),
/// as increasing CPU indexes into `out`. Returns how many CPUs are set (may exceed cap) or -1
/// with errno set.
int hfr_get_affinity(pid_t tid, int *out, int cap);
/// sched_getcpu(3): the CPU the calling thread runs on, or -1 with errno set.
int hfr_current_cpu(void);

// MARK: NUMA memory

/// numa_available(3) and numa_max_node(3): the highest node number, or -1 without NUMA support.
int hfr_numa_max_node(void);
/// mbind(2) of [addr, addr+len) with `mode` (MPOL_BIND, MPOL_PREFERRED, MPOL_INTERLEAVE,
/// MPOL_DEFAULT) over the `n` nodes of `nodes`. Returns 0 or the error number.
int hfr_mbind(void *addr, size_t len, int mode, const int *nodes, int n);
/// get_mempolicy(2) with MPOL_F_ADDR: the policy mode of the page at `addr` into `*mode` and its
/// nodes into `nodes` (up to cap; returns how many, or -1 with errno set).
int hfr_page_policy(void *addr, int *mode, int *nodes, int cap);
/// get_mempolicy(2) with MPOL_F_ADDR | MPOL_F_NODE: the node holding the page at `addr` (touch
/// it first), or -1 with errno set.
int hfr_page_node(void *addr);

/// MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE (numaif.h).
enum { HFR_MPOL_DEFAULT = 0, HFR_MPOL_PREFERRED = 1, HFR_MPOL_BIND = 2, HFR_MPOL_INTERLEAVE = 3, HFR_MPOL_LOCAL = 4 };
#endif
