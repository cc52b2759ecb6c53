import Synchronization
import Testing

@testable import RedFireGateway

/// What a test started that must stop when it ends, however it ends: a `try` that throws halfway
/// leaves no gateway or instance running into the rest of the parallel run. `GatewayHarness.start` and
/// `startInstances` register here; the `.cleansUp` trait stops whatever is still running after each
/// test (stopping twice is harmless, so the tests' own `shutdown()` calls stay as they are).
final class TestResources: Sendable {
    @TaskLocal static var current: TestResources?

    private let cleanups = Mutex<[@Sendable () async -> Void]>([])

    /// Registers `cleanup` with the running test's scope, if it has one.
    static func register(_ cleanup: @escaping @Sendable () async -> Void) {
        current?.cleanups.withLock { $0.append(cleanup) }
    }

    /// Runs the cleanups, newest first (a gateway stops before the instances behind it).
    func cleanUp() async {
        let all = cleanups.withLock { cleanups in
            defer { cleanups.removeAll() }
            return cleanups
        }
        for cleanup in all.reversed() { await cleanup() }
    }
}

/// Gives every test of a suite its own `TestResources` and cleans up after it.
struct CleansUp: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard !test.isSuite else { return try await function() }
        let resources = TestResources()
        do {
            try await TestResources.$current.withValue(resources) { try await function() }
        } catch {
            await resources.cleanUp()
            throw error
        }
        await resources.cleanUp()
    }
}

extension Trait where Self == CleansUp {
    /// Stops what each test started, even when it fails early.
    static var cleansUp: Self { CleansUp() }
}

@Suite("Test harness")
struct TestHarnessTests {
    struct Stop: Error {}

    /// A test that throws halfway still stops what it started: the gateway's port refuses afterwards.
    @Test func aFailingTestLeavesNoGatewayRunning() async throws {
        let resources = TestResources()
        let port = Mutex(0)
        await #expect(throws: Stop.self) {
            try await TestResources.$current.withValue(resources) {
                let gateway = try await GatewayHarness.start(GatewayConfig())
                port.withLock { $0 = gateway.port }
                #expect(try await gateway.send("/health").status == 200)
                throw Stop()
            }
        }
        await resources.cleanUp()
        let stopped = port.withLock { $0 }
        #expect(stopped > 0)
        await #expect(throws: (any Error).self) { _ = try await RawConnection(port: stopped) }
    }
}
