import DistillExperiments
import Testing

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

@Suite struct AggregationTests {
    @Test func meanIntervalMatchesTheClosedForm() {
        let m = MeanInterval([1, 2, 3, 4, 5])
        #expect(m.count == 5)
        #expect(abs(m.mean - 3) < 1e-12)
        #expect(abs(m.standardDeviation - 2.5.squareRoot()) < 1e-12)
        // t_{0.975, 4} = 2.776445 (table); half-width = t · s / √n.
        #expect(abs(m.halfWidth - 2.776445 * 2.5.squareRoot() / 5.0.squareRoot()) < 1e-5)
        #expect(MeanInterval([7]).halfWidth == .infinity)
        #expect(MeanInterval([1, .nan, 3]).count == 2)
    }

    @Test func pairedDifferenceUsesOnlyCommonReplicates() {
        let d = ExperimentResults.pairedDifference([0: 5, 1: 7, 2: 9, 3: 100], [0: 4, 1: 5, 2: 6])
        #expect(d.count == 3)
        #expect(abs(d.mean - 2) < 1e-12)
        #expect(abs(d.standardDeviation - 1) < 1e-12)
    }

    @Test func normalisedAreaIsTheMeanLevelOfAPiecewiseLinearCurve() {
        #expect(abs(normalisedArea([0, 10], [0, 1]) - 0.5) < 1e-12)
        #expect(abs(normalisedArea([0, 1, 3], [2, 2, 2]) - 2) < 1e-12)
        #expect(abs(normalisedArea([0, 2, 4], [0, 2, 0]) - 1) < 1e-12)
    }

    @Test func aggregateCSVHoldsMeanAndStudentInterval() throws {
        let experiment = try Experiment.make(ExperimentParameters(name: .fig6, mdps: 3, iterations: 10, quick: true))
        let runs = experiment.runs.filter { $0.panel == "optimal teacher" && $0.curve == "baseline" }
        #expect(runs.count == 3)
        var tables: [String: RunTable] = [:]
        for (k, run) in runs.enumerated() {
            var t = RunTable(metrics: experiment.metrics)
            for i in experiment.evaluationIterations {
                t.iterations.append(i)
                t.environmentSteps.append(10 * i)
                t.wallSeconds.append(0)
                t.values[0].append(Double(k + 1) * Double(i))  // return: i, 2i, 3i
                t.values[1].append(0.96)
            }
            tables[run.id] = t
        }
        let results = ExperimentResults(experiment: experiment, tables: tables)
        let line = results.aggregateCSV.split(separator: "\n").first {
            $0.hasPrefix("optimal teacher,baseline,return,10,")
        }
        let cells = try #require(line).split(separator: ",").map(String.init)
        // n = 3, mean = 2i = 20, sd = i = 10, half-width = t_{0.975,2} · 10 / √3 = 4.302653 · 10 / √3.
        #expect(cells[5] == "3")
        #expect(abs(Double(cells[6])! - 20) < 1e-9)
        #expect(abs(Double(cells[7])! - 10) < 1e-9)
        #expect(abs(Double(cells[8])! - (20 - 4.302653 * 10 / 3.0.squareRoot())) < 1e-4)
        // Round trip of the per-run CSV.
        let table = tables[runs[0].id]!
        #expect(try RunTable(csv: table.csv, source: "test") == table)
    }
}
