"""The floor: a coin flip per suspect, seeded so a report can be reproduced.

Where it comes from: TrainProVe's table lists random guessing as the floor every method must beat
(accuracy 0.5, F1 0.286, AUC 0.5 with one positive per three negatives). What it assumes: nothing; it
never looks at the answers. It claims its error rates exactly: every suspect is called trained with
probability `p_trained`, so the false-accusation rate is `p_trained` and the false-clearing rate is
1 - `p_trained`, whatever the suspects are. The coin of a suspect depends only on `seed` and its name.
"""

from __future__ import annotations

import numpy as np

from trainprove_core import Evidence, Verdict, check_fraction, derive_seed

NAME = "random-guess"


class RandomGuessTest:
    """Calls each suspect trained with probability `p_trained`, independently of its answers."""

    needs = "labels"

    def __init__(self, p_trained: float = 0.5, seed: int = 0) -> None:
        check_fraction("p_trained", p_trained, NAME)
        self.p_trained = p_trained
        self.seed = seed

    def decide(self, evidence: Evidence) -> Verdict:
        coin, score = np.random.default_rng(derive_seed(NAME, self.seed, evidence.suspect_name)).random(2)
        decision = "trained-on-generator" if coin < self.p_trained else "not-trained-on-generator"
        return Verdict(
            suspect=evidence.suspect_name,
            test=NAME,
            decision=decision,
            explanation=f"{evidence.suspect_name}: {decision.replace('-', ' ')}; a seeded coin "
            f"(seed {self.seed}) that says trained with probability {self.p_trained} decided, not the "
            "evidence.",
            statistic=float(coin),
            threshold=self.p_trained,
            details={"score": float(score), "seed": self.seed},
        )
