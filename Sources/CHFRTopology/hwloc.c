#include "CHFRTopology.h"
#include <errno.h>
#include <stdio.h>

int hfr_topology_load(const char *xml_path, hwloc_topology_t *out, const char **failed_call) {
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0) { *failed_call = "hwloc_topology_init"; return -1; }
    if (hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_ALL) != 0) {
        int e = errno;
        hwloc_topology_destroy(t);
        errno = e; *failed_call = "hwloc_topology_set_io_types_filter";
        return -1;
    }
    // GPU OS devices are not needed (GPUs are found as PCI devices): keep hwloc from opening X
    // displays and initializing OpenCL runtimes inside a training process.
    static const char *const skipped[] = {"gl", "opencl", "cuda", "nvml", "rsmi", "levelzero"};
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        // Unknown component names are refused only by old hwloc releases; nothing to undo then.
        (void)hwloc_topology_set_components(t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, skipped[i]);
    }
    if (xml_path != NULL && hwloc_topology_set_xml(t, xml_path) != 0) {
        int e = errno;
        hwloc_topology_destroy(t);
        errno = e; *failed_call = "hwloc_topology_set_xml";
        return -1;
    }
    if (hwloc_topology_load(t) != 0) {
        int e = errno;
        hwloc_topology_destroy(t);
        errno = e; *failed_call = "hwloc_topology_load";
        return -1;
    }
    *out = t;
    return 0;
}

const char *hfr_hwloc_version(void) { return HWLOC_VERSION; }

int hfr_bitmap_indexes(hwloc_const_bitmap_t set, int *out, int cap) {
    if (hwloc_bitmap_weight(set) < 0) return -1;
    int n = 0;
    unsigned i;
    hwloc_bitmap_foreach_begin(i, set) {
        if (n < cap) out[n] = (int)i;
        n++;
    } hwloc_bitmap_foreach_end();
    return n;
}

int hfr_object_count(hwloc_topology_t topology, hwloc_obj_type_t type) {
    return hwloc_get_nbobjs_by_type(topology, type);
}

hwloc_obj_t hfr_object(hwloc_topology_t topology, hwloc_obj_type_t type, unsigned index) {
    return hwloc_get_obj_by_type(topology, type, index);
}

hwloc_obj_t hfr_non_io_ancestor(hwloc_topology_t topology, hwloc_obj_t obj) {
    return hwloc_get_non_io_ancestor_obj(topology, obj);
}

int hfr_osdev_type(hwloc_obj_t obj) { return (int)obj->attr->osdev.type; }

uint64_t hfr_numa_local_memory(hwloc_obj_t obj) { return obj->attr->numanode.local_memory; }

unsigned hfr_pci_class(hwloc_obj_t obj) { return obj->attr->pcidev.class_id; }

void hfr_pci_busid(hwloc_obj_t obj, char *buf, size_t len) {
    struct hwloc_pcidev_attr_s *p = &obj->attr->pcidev;
    snprintf(buf, len, "%04x:%02x:%02x.%01x", p->domain, p->bus, p->dev, p->func);
}
