import DistillNN
import Foundation
import Testing

/// The architecture grammar: what parses to what, canonical round trips, and errors that name the bad part.
@Suite struct ArchitectureTests {
    typealias Conv = NetworkArchitecture.Convolution

    @Test func validStringsParseToTheirParts() throws {
        let cases: [(String, NetworkArchitecture)] = [
            ("linear", NetworkArchitecture()),
            ("mlp:64,64", NetworkArchitecture(hiddenWidths: [64, 64])),
            ("mlp:64,64/tanh", NetworkArchitecture(hiddenWidths: [64, 64], activation: .tanh)),
            ("mlp:32/relu", NetworkArchitecture(hiddenWidths: [32])),
            (
                "conv:16x3,32x3/mlp:256",
                NetworkArchitecture(
                    convolutions: [Conv(channels: 16, kernel: 3), Conv(channels: 32, kernel: 3)], hiddenWidths: [256])
            ),
            (
                "conv:16x3s2,32x3/tanh",
                NetworkArchitecture(
                    convolutions: [Conv(channels: 16, kernel: 3, stride: 2), Conv(channels: 32, kernel: 3)],
                    activation: .tanh)
            ),
        ]
        for (text, expected) in cases {
            let parsed = try NetworkArchitecture(parsing: text)
            #expect(parsed == expected, "\(text)")
            #expect(try NetworkArchitecture(parsing: parsed.description) == parsed, "\(text) round trip")
        }
        #expect(try NetworkArchitecture(parsing: "mlp:32/relu").description == "mlp:32")
        #expect(try NetworkArchitecture(parsing: "conv:8x3s1").description == "conv:8x3")
    }

    @Test func codableIsTheCanonicalString() throws {
        let architecture = try NetworkArchitecture(parsing: "conv:16x3s2/mlp:64/tanh")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let json = try encoder.encode(["student": architecture])
        #expect(String(decoding: json, as: UTF8.self) == #"{"student":"conv:16x3s2/mlp:64/tanh"}"#)
        #expect(try JSONDecoder().decode([String: NetworkArchitecture].self, from: json)["student"] == architecture)
        #expect(throws: DecodingError.self) {
            _ = try JSONDecoder().decode([NetworkArchitecture].self, from: Data(#"["mlp:0"]"#.utf8))
        }
    }

    @Test func malformedStringsNameTheBadPartAndShowTheGrammar() {
        let cases: [(String, String)] = [
            ("", "has no kind"),
            ("tabular", "\"tabular\" has no kind"),
            ("mlp", "\"mlp\" has no kind"),
            ("mlp:", "lists no layers"),
            ("mlp:64,", "width \"\" is not a positive integer"),
            ("mlp:64,0", "width \"0\""),
            ("mlp:-4", "width \"-4\""),
            ("mlp:64/sigmoid", "unknown activation \"sigmoid\""),
            ("mlp:64/tanh/relu", "activation \"tanh\" is out of place"),
            ("resnet:50", "unknown layer kind \"resnet\""),
            ("conv:16", "filter \"16\" is not channels x kernel"),
            ("conv:16x", "kernel size \"\""),
            ("conv:ax3", "channel count \"a\""),
            ("conv:16x3s", "stride \"\""),
            ("conv:16x3s2s2", "more than one stride"),
            ("mlp:64/conv:16x3", "\"conv:16x3\" is out of place"),
            ("conv:16x3/mlp:64/mlp:32", "\"mlp:32\" is out of place"),
            ("linear/tanh", "\"linear\" has no kind"),
            (" mlp:64", "\" mlp\""),
        ]
        for (text, fragment) in cases {
            expectNetworkError(["architecture \"\(text)\"", fragment, "examples: linear, mlp:64,64"]) {
                _ = try NetworkArchitecture(parsing: text)
            }
        }
    }
}
