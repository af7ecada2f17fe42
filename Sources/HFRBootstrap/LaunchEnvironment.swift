import HFRSystem

/// Rank, size, rendezvous address and job token, as a launcher sets them in the environment.
public struct LaunchEnvironment: Equatable, Sendable {
    public var rank: Int
    public var size: Int
    public var localRank: Int?
    public var root: SocketAddress
    public var jobToken: UInt64
    /// Which launcher's variables were used (for HFR_DEBUG=INFO).
    public var source: String

    /// Reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT, Open MPI's
    /// OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE, or Slurm's SLURM_PROCID / SLURM_NTASKS;
    /// the root from HFR_ROOT=host:port or MASTER_ADDR and MASTER_PORT; the token from HFR_JOB_TOKEN.
    public static func detect(_ get: (String) -> String? = Environment.string) throws -> LaunchEnvironment {
        func int(_ name: String) throws -> Int? {
            guard let s = get(name) else { return nil }
            guard let v = Int(s) else { throw ConfigurationError("\(name)=\(s) is not an integer") }
            return v
        }
        let pairs = [("RANK", "WORLD_SIZE", "torchrun"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "Open MPI"),
                     ("SLURM_PROCID", "SLURM_NTASKS", "Slurm")]
        var found: (Int, Int, String)?
        for (r, s, name) in pairs {
            let rank = try int(r), size = try int(s)
            if let rank, let size { found = (rank, size, name); break }
            if rank != nil || size != nil {
                throw ConfigurationError("\(rank == nil ? r : s) is not set, but \(rank == nil ? s : r) is")
            }
        }
        guard let (rank, size, source) = found else {
            throw ConfigurationError("no launcher environment: set RANK and WORLD_SIZE (torchrun, hfrun), or run under mpirun or srun")
        }
        guard size >= 1 else { throw ConfigurationError("world size \(size) must be at least 1") }
        guard rank >= 0 && rank < size else { throw ConfigurationError("rank \(rank) is outside 0..<\(size)") }
        let root: SocketAddress
        if let r = get("HFR_ROOT") {
            do { root = try SocketAddress(parsing: r) } catch { throw ConfigurationError("HFR_ROOT=\(r): \(error)") }
        } else if let addr = get("MASTER_ADDR"), let port = get("MASTER_PORT") {
            guard let p = UInt16(port), p > 0 else { throw ConfigurationError("MASTER_PORT=\(port) is not a port number") }
            do { root = try SocketAddress(host: addr, port: p) } catch { throw ConfigurationError("MASTER_ADDR=\(addr): \(error)") }
        } else {
            throw ConfigurationError("no rendezvous address: set HFR_ROOT=host:port, or MASTER_ADDR and MASTER_PORT")
        }
        let token = get("HFR_JOB_TOKEN").map(parseToken) ?? parseToken(defaultTokenText(root: root, get))
        let localRank = try int("LOCAL_RANK") ?? int("OMPI_COMM_WORLD_LOCAL_RANK") ?? int("SLURM_LOCALID")
        return LaunchEnvironment(rank: rank, size: size, localRank: localRank, root: root, jobToken: token, source: source)
    }

    /// What the job token is made from without HFR_JOB_TOKEN: the rendezvous address, and the
    /// launcher's id of this run where there is one, so that ranks of an earlier run on the same
    /// address (a job restarted on its port, still retrying) are another job, not this one.
    static func defaultTokenText(root: SocketAddress, _ get: (String) -> String?) -> String {
        let ids = ["TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_STEP_ID", "PMIX_NAMESPACE", "OMPI_MCA_orte_ess_jobid"].compactMap { name in
            get(name).map { "\(name)=\($0)" }
        }
        return ([root.description] + ids).joined(separator: " ")
    }

    /// A token of up to 16 hex digits is used as is; any other text is hashed (FNV-1a, 64 bits).
    public static func parseToken(_ text: String) -> UInt64 {
        if text.count <= 16, let v = UInt64(text, radix: 16) { return v }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
