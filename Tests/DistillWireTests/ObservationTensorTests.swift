import DistillWire
import Testing

/// Typed observation tensors (protocol version 2): what a peer may send, and the garbage,
/// oversized and non-finite tensors the codec rejects, naming the field, without crashing.
@Suite("Observation tensors")
struct ObservationTensorTests {
    let codec = WireCodec()

    func query(_ tensor: ObservationTensor, codec: WireCodec? = nil) throws(DecodingError) -> TeacherQuery {
        let coder = codec ?? self.codec
        let envelope = try coder.decode(
            coder.encode(
                Envelope(
                    sender: Fixtures.sender, message: .teacherQuery(TeacherQuery(queryID: 5, observations: tensor)))))
        guard case .teacherQuery(let query) = envelope.message else { throw DecodingError(.malformed, "not a query") }
        return query
    }

    func rejection(_ tensor: ObservationTensor, codec: WireCodec? = nil) -> String? {
        do {
            _ = try query(tensor, codec: codec)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func float32Uint8AndPackedBooleansReadAsFloats() throws {
        let floats = try query(ObservationTensor(rows: 2, rowShape: [2], float32: [0.5, -1, 3, 1e-3]))
        #expect(floats.observations.floats() == [0.5, -1, 3, 1e-3])
        let bytes = try query(ObservationTensor(dtype: .uint8, shape: [1, 3], data: [0, 128, 255]))
        #expect(bytes.observations.floats() == [0, 128, 255])
        let bits = try query(ObservationTensor(dtype: .boolPacked, shape: [2, 5], data: [0b1000_0101, 0b10]))
        #expect(bits.observations.floats() == [1, 0, 1, 0, 0, 0, 0, 1, 0, 1])
        #expect(bits.batchSize == 2)
    }

    @Test func dataThatDoesNotFitTheShapeIsRejected() {
        for (tensor, what) in [
            (ObservationTensor(dtype: .float32, shape: [2, 4], data: [UInt8](repeating: 0, count: 31)), "31 bytes"),
            (ObservationTensor(dtype: .float32, shape: [2, 4], data: [UInt8](repeating: 0, count: 33)), "33 bytes"),
            (ObservationTensor(dtype: .uint8, shape: [4], data: [1, 2, 3, 4]), "shape [4]"),
            (ObservationTensor(dtype: .uint8, shape: [0, 4], data: []), "shape [0, 4]"),
            (ObservationTensor(dtype: .boolPacked, shape: [1, 9], data: [0xFF]), "1 bytes"),
            (ObservationTensor(dtype: .float32, shape: [], data: [1, 2, 3, 4]), "shape []"),
        ] {
            let message = rejection(tensor)
            #expect(message?.contains("TeacherQuery.observations") == true, "\(what): \(message ?? "accepted")")
        }
    }

    @Test func oversizedAndOverflowingShapesAreRejectedBeforeAllocating() {
        var small = WireCodec()
        small.maxObservationElements = 1000
        let message = rejection(
            ObservationTensor(dtype: .uint8, shape: [11, 100], data: [UInt8](repeating: 1, count: 1100)), codec: small)
        #expect(message?.contains("oversized") == true, "\(message ?? "accepted")")
        let overflow = rejection(ObservationTensor(dtype: .uint8, shape: [1 << 31, 1 << 31, 1 << 31], data: [1]))
        #expect(overflow?.contains("oversized") == true, "\(overflow ?? "accepted")")
    }

    @Test func nonFiniteFloatsAndStrayBitsAreRejected() {
        let nan = rejection(ObservationTensor(rows: 1, rowShape: [2], float32: [1, .nan]))
        #expect(nan?.contains("TeacherQuery.observations[1] is not finite") == true, "\(nan ?? "accepted")")
        let stray = rejection(ObservationTensor(dtype: .boolPacked, shape: [1, 3], data: [0b1000]))
        #expect(stray?.contains("beyond its last element") == true, "\(stray ?? "accepted")")
    }

    @Test func garbageBytesNeverCrashTheDecoder() {
        var rng = SystemRandomNumberGenerator()
        let valid = codec.encode(
            Envelope(sender: Fixtures.sender, message: .unroll(Fixtures.observedUnroll)))
        for _ in 0..<2000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? codec.decode(bytes)
        }
    }

    @Test func anUnrollsObservationRowsMatchItsStates() {
        func unrollRejection(_ change: (inout Unroll) -> Void) -> String? {
            var unroll = Fixtures.observedUnroll
            change(&unroll)
            do {
                _ = try codec.decode(codec.encode(Envelope(sender: Fixtures.sender, message: .unroll(unroll))))
                return nil
            } catch {
                return error.message
            }
        }
        let rows = unrollRejection {
            $0.observationTensor = ObservationTensor(rows: 4, rowShape: [4], float32: [Float](repeating: 0, count: 16))
        }
        #expect(rows?.contains("Unroll.observation_tensor has 4 rows") == true, "\(rows ?? "accepted")")
        let both = unrollRejection { $0.observations = [0, 1, 2, 3, 4] }
        #expect(both?.contains("both observations") == true, "\(both ?? "accepted")")
        let teacherOnly = unrollRejection { $0.observationTensor = .empty }
        #expect(teacherOnly?.contains("needs an observation_tensor") == true, "\(teacherOnly ?? "accepted")")
    }

    @Test func environmentSpecsNameTheirMismatch() {
        let cartPole = Fixtures.cartPole
        #expect(cartPole.mismatch(with: cartPole) == nil)
        let acrobot = WireEnvironmentSpec(name: "acrobot", observationShape: [6], actionCount: 3)
        #expect(cartPole.mismatch(with: acrobot)?.contains("acrobot(obs=[6] float32, actions=3)") == true)
    }
}
