import DistillNN

/// How an environment's observations become a network's input (docs/networks.md, "Layouts").
///
/// Environments write images channel-major, `[C, H, W]` (``EnvironmentDescription``); a
/// convolution reads `[H, W, C]` (NHWC, channels fastest). So a network with a convolution reads a
/// three-dimensional observation transposed, and every other network reads the environment's layout
/// as it is (an MLP flattens an image in the environment's (c, h, w) order). Students and teachers
/// both go through here, so a teacher file written from a student reads its inputs the same way.
public enum ObservationLayout {
    /// Whether `architecture` reads observations of `environmentShape` transposed to channels-last.
    public static func isChannelsLast(_ architecture: NetworkArchitecture, environmentShape: [Int]) -> Bool {
        !architecture.convolutions.isEmpty && environmentShape.count == 3
    }

    /// The network's input shape for observations of `environmentShape`: `[H, W, C]` for a
    /// convolutional network on `[C, H, W]`, the environment's shape otherwise.
    public static func networkShape(_ architecture: NetworkArchitecture, environmentShape: [Int]) -> [Int] {
        guard isChannelsLast(architecture, environmentShape: environmentShape) else { return environmentShape }
        return [environmentShape[1], environmentShape[2], environmentShape[0]]
    }

    /// `observations` (row-major `[batch] + environmentShape`) in the layout `architecture` reads.
    public static func networkInput(
        _ observations: [Float], environmentShape: [Int], architecture: NetworkArchitecture
    ) -> [Float] {
        guard isChannelsLast(architecture, environmentShape: environmentShape) else { return observations }
        return channelsLast(observations, shape: environmentShape)
    }

    /// Row-major `[batch, C, H, W]` → `[batch, H, W, C]`: x′[b, y, x, c] = x[b, c, y, x].
    public static func channelsLast(_ observations: [Float], shape: [Int]) -> [Float] {
        precondition(shape.count == 3, "channelsLast: shape \(shape) is not [C, H, W]")
        let (c, h, w) = (shape[0], shape[1], shape[2])
        let per = c * h * w
        precondition(per > 0 && observations.count % per == 0, "channelsLast: not whole observations of \(shape)")
        var transposed = [Float](repeating: 0, count: observations.count)
        for b in 0..<(observations.count / per) {
            let base = b * per
            for ch in 0..<c {
                for y in 0..<h {
                    for x in 0..<w {
                        transposed[base + (y * w + x) * c + ch] = observations[base + (ch * h + y) * w + x]
                    }
                }
            }
        }
        return transposed
    }
}
