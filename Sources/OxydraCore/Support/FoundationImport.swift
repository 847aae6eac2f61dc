// OxydraCore uses the smaller FoundationEssentials where the toolchain has it (Linux),
// and full Foundation elsewhere. Every file imports through `@_exported` here so the
// choice is made once.
#if canImport(FoundationEssentials)
    @_exported import FoundationEssentials
#else
    @_exported import Foundation
#endif
