import Glibc
import HFRSystem
import HFRVerbs

// The peer process of Tests/HFRVerbsTests. Modes:
//   pair <side>   the cross-process write: over stdin/stdout, exchanges a 48-byte blob (queue pair
//                 address, receive buffer address, rkey, length) with the test, connects, writes
//                 1 MiB in fragments with immediates while receiving the same, checks both, and
//                 prints "OK" or "FAIL: ..." lines.
//   fail          with HFR_IB_SOFT_FAIL=soft_0:after=3: three writes on soft_0 complete, the fourth
//                 is flushed, and soft_0's port is DOWN.
//   load          prints what VerbsLibrary.load() says (the environment selects).

setvbuf(stdout, nil, _IOLBF, 0)
let args = CommandLine.arguments
let mode = args.count > 1 ? args[1] : "load"

func fail(_ message: String) -> Never {
    print("FAIL: \(message)")
    exit(1)
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

do {
    switch mode {
    case "pair": try pair(side: args.count > 2 ? UInt32(args[2]) ?? 1 : 1)
    case "fail": try failMidway()
    case "load":
        do {
            let library = try VerbsLibrary.load()
            print("loaded \(library.kind), devices: \(try library.deviceNames().joined(separator: ","))")
        } catch {
            print("error: \(error)")
        }
    default: fail("unknown mode \(mode)")
    }
} catch {
    fail("\(error)")
}
exit(0)
