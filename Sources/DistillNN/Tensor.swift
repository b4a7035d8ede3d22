/// A dense Float32 tensor: a shape and its scalars, contiguous and row-major (the last index fastest).
public struct Tensor: Hashable, Sendable {
    /// The extent of each dimension; `[]` is a scalar.
    public private(set) var shape: [Int]
    /// The values in row-major order; `scalars.count` is the product of `shape`.
    public var scalars: [Float]

    /// A tensor of `shape` holding `scalars` (row-major); their count must be the product of the shape.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        precondition(
            scalars.count == Tensor.elementCount(shape),
            "Tensor: \(scalars.count) scalars for shape \(shape) (needs \(Tensor.elementCount(shape)))")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: Tensor.elementCount(shape)))
    }

    /// The number of scalars.
    public var count: Int { scalars.count }

    /// The same scalars under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    /// The product of the extents (1 for a scalar).
    public static func elementCount(_ shape: [Int]) -> Int {
        shape.reduce(1, *)
    }
}
