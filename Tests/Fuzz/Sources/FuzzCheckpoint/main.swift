// fuzz-checkpoint: CheckpointStore reading a checkpoint file of arbitrary bytes (docs/fuzzing.md).
import FuzzSupport

FuzzDriver.main(target: CheckpointTarget.name, seeds: CheckpointTarget.seeds) { data, size in
    CheckpointTarget.test(FuzzDriver.bytes(data, size))
}
