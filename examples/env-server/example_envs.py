"""A small environment of one's own, registered with gymnasium: how to bring your own.

`run --import example_envs --env distill-examples/Lights-v0` serves it (the server imports this
module, which registers the id). The lab test scripts/lab/tests/61-env-server.sh uses it for
MultiBinary observations (and, with --make-kwargs '{"pixels": true}', uint8 ones).

Lights: a row of `size` lamps, some lit at reset; action i toggles lamp i. Reward -0.1 per step;
+1 and the episode ends (terminated) when every lamp is off. Time limit 50 steps.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Lights(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, size: int = 6, pixels: bool = False):
        if not 1 <= size <= 64:
            raise ValueError(f"size must be in 1..64, got {size}")
        self.size = size
        self.pixels = pixels
        self.action_space = gym.spaces.Discrete(size)
        if pixels:
            # An "image": one channel, one row, a lamp is 255 when lit.
            self.observation_space = gym.spaces.Box(0, 255, shape=(1, 1, size), dtype=np.uint8)
        else:
            self.observation_space = gym.spaces.MultiBinary(size)
        self.lamps = np.zeros(size, dtype=np.int8)

    def _observation(self):
        if self.pixels:
            return (self.lamps.astype(np.uint8) * 255).reshape(1, 1, self.size)
        return self.lamps.copy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.lamps = self.np_random.integers(0, 2, size=self.size, dtype=np.int8)
        if not self.lamps.any():
            self.lamps[self.np_random.integers(0, self.size)] = 1
        return self._observation(), {}

    def step(self, action):
        self.lamps[int(action)] ^= 1
        done = not self.lamps.any()
        return self._observation(), 1.0 if done else -0.1, done, False, {}


gym.register(id="distill-examples/Lights-v0", entry_point=Lights, max_episode_steps=50)
