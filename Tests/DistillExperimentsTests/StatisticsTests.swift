import Testing

@testable import DistillExperiments

@Suite struct StatisticsTests {
    /// Two-sided 95 % critical values of Student's t from a printed table (e.g. NIST/SEMATECH 1.3.6.7.2).
    @Test func studentQuantileMatchesTheTable() {
        let table: [(Double, Double)] = [
            (1, 12.706), (2, 4.303), (3, 3.182), (5, 2.571), (10, 2.228), (20, 2.086), (30, 2.042), (100, 1.984),
        ]
        for (nu, t) in table {
            #expect(abs(StudentT.quantile(0.975, degreesOfFreedom: nu) - t) < 1e-3, "ν = \(nu)")
        }
        #expect(abs(StudentT.quantile(0.975, degreesOfFreedom: 1e6) - 1.95996) < 1e-3)
        #expect(abs(StudentT.cdf(0, degreesOfFreedom: 7) - 0.5) < 1e-12)
    }
}
