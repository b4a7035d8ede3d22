// fuzz-unroll: a decoded Unroll through the learner's validation and learning step (docs/fuzzing.md).
import FuzzSupport

FuzzDriver.main(target: UnrollTarget.name, seeds: UnrollTarget.seeds) { data, size in
    UnrollTarget.test(FuzzDriver.bytes(data, size))
}
