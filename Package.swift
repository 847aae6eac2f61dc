// swift-tools-version: 6.1
//
// Oxydra: a self-hosted AI agent orchestrator.
//
// Library targets are layered; a target imports only targets of its own layer or below,
// and the dependency lists below are what enforces it.
//
// | layer       | targets                                                              |
// |-------------|----------------------------------------------------------------------|
// | foundation  | OxydraCore (value types, contracts, catalog, config schema; no deps) |
// |             | CSystemShims (C wrappers for openat2 and other raw system calls)     |
// |             | CSQLite (the system's SQLite 3, for the memory store)                |
// | core        | OxydraConfig, OxydraProviders, OxydraTools, OxydraMemory,            |
// |             | OxydraRuntime, OxydraSandbox                                         |
// | client      | OxydraClient (gateway client, token discovery; for every front end)   |
// | application | OxydraGateway, OxydraChannels, OxydraRunner, OxydraShellDaemon,      |
// |             | OxydraTUI, OxydraGuest (the whole guest; oxydra-vm is its `main`),   |
// |             | OxydraContainer (Docker Engine API client, image trees),             |
// |             | OxydraMicroVM (QEMU microvm plans, kernel modules, initramfs)        |
// | executables | runner, oxydra-vm, shell-daemon, oxydra-tui (thin `main` files)      |
// | testing     | OxydraTesting (fixtures, temp workspaces, child-process helpers)     |

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    // Members come only from modules a file imports itself: without it, TOMLKit's `import Foundation`
    // leaks Foundation's String overloads (`contains`, `range(of:)`) into every module above it,
    // which links full Foundation and ICU into the guest.
    .enableUpcomingFeature("MemberImportVisibility"),
]

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let tomlKit = Target.Dependency.product(name: "TOMLKit", package: "TOMLKit")
let subprocess = Target.Dependency.product(name: "Subprocess", package: "swift-subprocess")
let hummingbird: [Target.Dependency] = [
    .product(name: "Hummingbird", package: "hummingbird"),
    .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
]
let webSocketClient = Target.Dependency.product(name: "HummingbirdWSClient", package: "hummingbird-websocket")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let asyncHTTPClient = Target.Dependency.product(name: "AsyncHTTPClient", package: "async-http-client")
let httpCompression = Target.Dependency.product(name: "NIOHTTPCompression", package: "swift-nio-extras")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioWebSocket = Target.Dependency.product(name: "NIOWebSocket", package: "swift-nio")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let nio: [Target.Dependency] = [
    nioCore, .product(name: "NIOPosix", package: "swift-nio"), nioHTTP1,
]

let package = Package(
    name: "Oxydra",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "runner", targets: ["runner"]),
        .executable(name: "oxydra-vm", targets: ["oxydra-vm"]),
        .executable(name: "shell-daemon", targets: ["shell-daemon"]),
        .executable(name: "oxydra-tui", targets: ["oxydra-tui"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.26.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.36.0"),
        // No default traits: `FullFoundation` would link full Foundation and ICU into the guest
        // (for URL-encoded-form dates we never use), `ConfigurationSupport` swift-configuration.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // SHA-256 for the audit log's hash chain (FoundationEssentials only, so the guest may link it).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
    ],
    targets: [
        // foundation
        .target(
            name: "OxydraCore",
            resources: [.embedInCode("Catalog/model_catalog.json")],
            swiftSettings: swiftSettings
        ),

        // platform shims (C): system calls Swift cannot call directly
        .target(name: "CSystemShims"),
        // the system's SQLite 3 (libsqlite3-dev), for the memory store
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),

        // core
        .target(name: "OxydraConfig", dependencies: ["OxydraCore", tomlKit], swiftSettings: swiftSettings),
        .target(
            name: "OxydraAudit",
            dependencies: ["OxydraCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraProviders",
            dependencies: ["OxydraCore", "OxydraConfig", asyncHTTPClient, nioSSL] + nio,
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraTools",
            dependencies: ["OxydraCore", "OxydraConfig", "CSystemShims", asyncHTTPClient, httpCompression] + nio,
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraMemory", dependencies: ["OxydraCore", "OxydraTools", "CSQLite", "CSystemShims"],
            swiftSettings: swiftSettings),
        .target(name: "OxydraRuntime", dependencies: ["OxydraCore"], swiftSettings: swiftSettings),
        .target(name: "OxydraSandbox", dependencies: ["OxydraCore", "CSystemShims"], swiftSettings: swiftSettings),

        // client
        .target(
            name: "OxydraClient",
            dependencies: ["OxydraCore", webSocketClient, logging, nioCore, nioWebSocket],
            swiftSettings: swiftSettings),

        // application
        .target(
            name: "OxydraGateway",
            dependencies: ["OxydraCore", "OxydraRuntime", "OxydraAudit"] + nio + [
                nioWebSocket, serviceLifecycle, logging,
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraChannels", dependencies: ["OxydraCore", asyncHTTPClient, nioCore, nioHTTP1, logging],
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraMicroVM", dependencies: ["OxydraCore", "OxydraContainer", subprocess],
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraGuest",
            dependencies: [
                "OxydraCore", "OxydraConfig", "OxydraProviders", "OxydraTools", "OxydraMemory", "OxydraRuntime",
                "OxydraSandbox", "OxydraGateway", "OxydraAudit", "OxydraChannels", serviceLifecycle, logging,
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraContainer",
            dependencies: ["OxydraCore", "OxydraSandbox", asyncHTTPClient, subprocess, nioCore, nioHTTP1],
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraRunner",
            dependencies: [
                "OxydraCore", "OxydraConfig", "OxydraSandbox", "OxydraClient", "OxydraContainer", "OxydraAudit",
                "OxydraMicroVM", "CSystemShims",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OxydraWeb",
            dependencies: [
                "OxydraCore", "OxydraConfig", "OxydraRunner", "OxydraClient", "OxydraProviders", subprocess,
            ] + hummingbird + nio
                + [
                    nioWebSocket, serviceLifecycle, logging,
                    .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                ],
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraShellDaemon", dependencies: ["OxydraCore", "OxydraSandbox", "CSystemShims"],
            swiftSettings: swiftSettings),
        .target(
            name: "OxydraTUI", dependencies: ["OxydraCore", "OxydraClient", logging], swiftSettings: swiftSettings),

        // executables
        .executableTarget(
            name: "runner",
            dependencies: [
                "OxydraRunner", "OxydraClient", "OxydraContainer", "OxydraWeb", "OxydraSandbox", argumentParser,
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "oxydra-vm", dependencies: ["OxydraGuest", "OxydraCore", argumentParser],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "shell-daemon",
            dependencies: ["OxydraShellDaemon", "OxydraSandbox", "OxydraCore", "CSystemShims", argumentParser],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "oxydra-tui", dependencies: ["OxydraTUI", "OxydraClient", "OxydraCore", argumentParser],
            swiftSettings: swiftSettings),

        // testing
        .target(
            name: "OxydraTesting", dependencies: ["OxydraCore", subprocess, webSocketClient, logging, nioSSL] + nio,
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "oxydra-benchmarks",
            dependencies: [
                "OxydraProviders", "OxydraRuntime", "OxydraTools", "OxydraMemory", "OxydraTesting", "OxydraRunner",
                "OxydraClient", "OxydraSandbox", "OxydraContainer", "OxydraTUI", "OxydraWeb", "OxydraMicroVM",
                "CSystemShims", "oxydra-vm",
                "shell-daemon", "runner",
                asyncHTTPClient,
            ] + nio,
            path: "Benchmarks/OxydraBenchmarks",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "OxydraCoreTests", dependencies: ["OxydraCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "OxydraConfigTests",
            dependencies: ["OxydraConfig", "OxydraTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OxydraProvidersTests",
            dependencies: ["OxydraProviders", "OxydraTesting", asyncHTTPClient, nioSSL] + nio,
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OxydraMicroVMTests",
            dependencies: ["OxydraMicroVM", "OxydraTesting", "OxydraClient", "OxydraRunner"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "OxydraChannelsTests",
            dependencies: ["OxydraChannels", "OxydraMemory", "OxydraTesting"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "OxydraContainerTests",
            dependencies: ["OxydraContainer", "OxydraTesting", nioCore],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "OxydraToolsTests",
            dependencies: ["OxydraTools", "OxydraConfig", "OxydraTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OxydraRuntimeTests",
            dependencies: ["OxydraRuntime", "OxydraProviders", "OxydraTools", "OxydraTesting"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "oxydra-memory-probe", dependencies: ["OxydraMemory"], path: "Tests/Probes/MemoryProbe",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "OxydraMemoryTests",
            dependencies: [
                "OxydraMemory", "OxydraRuntime", "OxydraProviders", "OxydraTools", "OxydraTesting",
                "oxydra-memory-probe",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OxydraGatewayTests",
            dependencies: [
                "OxydraGateway", "OxydraAudit", "OxydraClient", "OxydraMemory", "OxydraRuntime", "OxydraProviders",
                "OxydraTools",
                "OxydraTesting", serviceLifecycle, logging, asyncHTTPClient,
            ] + hummingbird + nio,
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OxydraTUITests", dependencies: ["OxydraTUI", "OxydraClient", "OxydraCore", "OxydraTesting"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "RunnerCLITests",
            dependencies: [
                "OxydraRunner", "OxydraClient", "OxydraContainer", "OxydraTesting", "OxydraSandbox", "OxydraTools",
                "OxydraWeb", "runner", "oxydra-vm",
                "shell-daemon",
                "oxydra-tui",
            ] + nio,
            swiftSettings: swiftSettings
        ),
    ]
)
