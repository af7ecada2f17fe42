import CHFRVerbs
import HFRSystem

/// The verbs implementation in use: libibverbs.so.1, loaded at run time (never linked), or the
/// software verbs device of CHFRVerbs (`HFR_IB_SOFT=N`). Every other type calls through its table.
public final class VerbsLibrary: @unchecked Sendable {
    public enum Kind: Equatable, Sendable {
        case libibverbs
        case soft
    }

    public let kind: Kind
    /// The C table (`struct hfr_verbs_ops`), for callers that need a verbs call not wrapped here.
    public let ops: UnsafePointer<hfr_verbs_ops>

    private init(ops: UnsafePointer<hfr_verbs_ops>) {
        self.ops = ops
        kind = ops.pointee.is_soft != 0 ? .soft : .libibverbs
    }

    private static func finish(_ status: Int32, _ ops: UnsafePointer<hfr_verbs_ops>?, _ message: UnsafePointer<CChar>?) throws(VerbsError) -> VerbsLibrary {
        let text = message.map { String(cString: $0) } ?? ""
        switch UInt32(bitPattern: status) {
        case HFR_VERBS_LOADED.rawValue: return VerbsLibrary(ops: ops!)
        case HFR_VERBS_NO_LIBRARY.rawValue: throw .libraryNotFound(text)
        case HFR_VERBS_NO_SYMBOL.rawValue: throw .missingSymbol(text)
        case HFR_VERBS_BAD_CONFIG.rawValue: throw .configuration(text)
        default: throw .unavailable(text)
        }
    }

    /// The implementation the environment selects: the software device with `HFR_IB_SOFT=N`
    /// HCAs when it is set, else libibverbs.so.1 (`hfr_verbs_load`).
    public static func load() throws(VerbsError) -> VerbsLibrary {
        var ops: UnsafePointer<hfr_verbs_ops>?
        var message: UnsafePointer<CChar>?
        let status = hfr_verbs_load(&ops, &message)
        return try finish(status, ops, message)
    }

    /// libibverbs.so.1, whatever the environment says (`hfr_verbs_load_real`).
    public static func loadLibibverbs() throws(VerbsError) -> VerbsLibrary {
        var ops: UnsafePointer<hfr_verbs_ops>?
        var message: UnsafePointer<CChar>?
        let status = hfr_verbs_load_real(&ops, &message)
        return try finish(status, ops, message)
    }

    /// The software device with `hcas` HCAs named soft_0, soft_1, ... (`hfr_verbs_load_soft`).
    /// The count is fixed by the process's first soft load.
    public static func loadSoft(hcas: Int) throws(VerbsError) -> VerbsLibrary {
        var ops: UnsafePointer<hfr_verbs_ops>?
        var message: UnsafePointer<CChar>?
        let status = hfr_verbs_load_soft(Int32(clamping: hcas), &ops, &message)
        return try finish(status, ops, message)
    }

    /// Fails the soft HCA `name` after `after` more send work requests (`hfr_soft_fail_device`):
    /// its port goes DOWN and all its QPs to ERROR, until its last context closes.
    public func failSoftDevice(_ name: String, after: Int = 0) throws(VerbsError) {
        guard kind == .soft else { throw .invalidArgument("failSoftDevice(\(name)): the library in use is libibverbs, not the soft device") }
        if hfr_soft_fail_device(name, after) != 0 { throw failure("hfr_soft_fail_device(\(name))", -1) }
    }

    /// The name of each device (`ibv_get_device_list`, `ibv_get_device_name`). Throws
    /// `.noDevice` naming the cause when the list cannot be read or is empty.
    public func deviceNames() throws(VerbsError) -> [String] {
        var count: Int32 = 0
        guard let list = ops.pointee.get_device_list(&count) else {
            let errno = Errno.current
            let why = errno.rawValue == ENOSYS ? " (this kernel has no RDMA support: no /sys/class/infiniband)" : ""
            throw .noDevice("no RDMA device: ibv_get_device_list failed: \(errno)\(why)")
        }
        defer { ops.pointee.free_device_list(list) }
        var names: [String] = []
        for i in 0..<Int(count) {
            if let device = list[i], let name = ops.pointee.get_device_name(device) { names.append(String(cString: name)) }
        }
        if names.isEmpty { throw .noDevice("no RDMA device: \(String(cString: ops.pointee.name)) lists none") }
        return names
    }

    /// Opens the device called `name` (`ibv_open_device`).
    public func open(_ name: String) throws(VerbsError) -> VerbsDevice {
        var count: Int32 = 0
        guard let list = ops.pointee.get_device_list(&count) else { throw failure("ibv_get_device_list", -1) }
        defer { ops.pointee.free_device_list(list) }
        for i in 0..<Int(count) {
            guard let device = list[i], let cName = ops.pointee.get_device_name(device), String(cString: cName) == name else { continue }
            guard let context = ops.pointee.open_device(device) else { throw failure("ibv_open_device(\(name))", -1) }
            return VerbsDevice(library: self, name: name, context: context)
        }
        throw .noDevice("no RDMA device is called \(name)")
    }

    /// `ibv_wc_status_str`.
    public func statusText(_ status: CompletionStatus) -> String {
        guard let text = ops.pointee.wc_status_str(ibv_wc_status(rawValue: status.rawValue)) else { return "unknown" }
        return String(cString: text)
    }

    /// The error for a failed call: `result` is the errno the call returned, or negative when it
    /// returned NULL or -1 and set errno.
    func failure(_ call: String, _ result: Int32) -> VerbsError {
        let errno = result > 0 ? Errno(rawValue: result) : Errno.current
        let detail = kind == .soft ? String(cString: hfr_verbs_last_error()) : ""
        return .call(call, errno, detail: detail)
    }
}
