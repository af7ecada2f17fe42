import Glibc
import CHFRTopology

/// Pins threads to CPUs and reads affinity masks back from the kernel.
public enum ThreadPinning {
    /// Pins the calling thread to `cpus` (`pthread_setaffinity_np(pthread_self(), ...)`).
    public static func pinCurrentThread(to cpus: CPUSet) throws(TopologyError) {
        guard !cpus.isEmpty else { throw .emptyCPUSet(purpose: "calling thread") }
        let list = cpus.indexes.map(Int32.init)
        let rc = hfr_set_thread_affinity(list, Int32(list.count))
        guard rc == 0 else { throw .affinity(call: "pthread_setaffinity_np", errno: rc, cpus: cpus) }
    }

    /// The calling thread's affinity mask (`sched_getaffinity(0)`).
    public static func currentThreadAffinity() throws(TopologyError) -> CPUSet {
        try affinity(of: 0)
    }

    /// The process's affinity mask: its main thread's (`sched_getaffinity(getpid())`), which is
    /// what a launcher (`taskset`, `mpirun --bind-to`, `srun --cpu-bind`) restricted.
    public static func processAffinity() throws(TopologyError) -> CPUSet {
        try affinity(of: getpid())
    }

    /// The CPU the calling thread is running on now (`sched_getcpu`).
    public static func currentCPU() throws(TopologyError) -> Int {
        let cpu = hfr_current_cpu()
        guard cpu >= 0 else { throw .affinity(call: "sched_getcpu", errno: errno, cpus: []) }
        return Int(cpu)
    }

    private static func affinity(of tid: pid_t) throws(TopologyError) -> CPUSet {
        let n = hfr_get_affinity(tid, nil, 0)
        guard n >= 0 else { throw .affinity(call: "sched_getaffinity", errno: errno, cpus: []) }
        var out = [Int32](repeating: 0, count: Int(n))
        let m = hfr_get_affinity(tid, &out, n)
        guard m >= 0 else { throw .affinity(call: "sched_getaffinity", errno: errno, cpus: []) }
        return CPUSet(out.prefix(Int(min(m, n))).map(Int.init))
    }
}
