import Testing

/// The suites that move the most bytes or do the most handshakes — streaming 100 MB each way, TLS,
/// HTTP/2 — and the cluster suites that measure time against a PostgreSQL of their own (rate-limit
/// windows, lease renewals, drains reaching every node within a second) run one test at a time among
/// all of them: on two cores, a bulk transfer beside a timed cluster test takes the time the latter
/// measures.
@Suite(.serialized) enum BulkTraffic {}

typealias HTTP2Tests = BulkTraffic.HTTP2Tests
typealias TLSListenerTests = BulkTraffic.TLSListenerTests
typealias UpstreamTLSTests = BulkTraffic.UpstreamTLSTests
typealias StreamingTests = BulkTraffic.StreamingTests
typealias ClusterRateLimitTests = BulkTraffic.ClusterRateLimitTests
typealias ClusterRegistrationTests = BulkTraffic.ClusterRegistrationTests
typealias ClusterTests = BulkTraffic.ClusterTests
