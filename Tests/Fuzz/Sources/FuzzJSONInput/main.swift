// fuzz-json-input: the MDP and teacher file readers (docs/fuzzing.md).
import FuzzSupport

FuzzDriver.main(target: JSONInputTarget.name, seeds: JSONInputTarget.seeds) { data, size in
    JSONInputTarget.test(FuzzDriver.bytes(data, size))
}
