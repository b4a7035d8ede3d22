// fuzz-codec: WireCodec.decode of arbitrary bytes (docs/fuzzing.md).
import FuzzSupport

FuzzDriver.main(target: CodecTarget.name, seeds: CodecTarget.seeds) { data, size in
    CodecTarget.test(FuzzDriver.bytes(data, size))
}
