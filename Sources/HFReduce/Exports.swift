@_exported import HFRKernels
@_exported import enum HFRCollectives.AllreduceAlgorithm
@_exported import struct HFRSystem.SocketAddress
@_exported import struct HFRProgress.ChannelStatistics
@_exported import struct HFRProgress.RDMACounters
@_exported import struct HFRProgress.RegistrationStatistics

/// The library's version: major * 1000 + minor * 100 + patch (1.2.3 is 1203), as NCCL counts.
public let hfreduceVersion = 100
/// The version as text.
public let hfreduceVersionString = "0.1.0"
